#!/usr/bin/env node
// The storefront's browser test: headless Chromium loads the page from a gateway (the real one
// or tests/fake-gateway.mjs), the page talks gRPC-web to it, and the test browses like a shopper.
//
//   node tests/storefront.mjs http://127.0.0.1:PORT [--screenshot FILE] [--user ID]
//                             [--timeout SECONDS] [--update-timeout SECONDS] [--chromium PATH]
//
// It asserts, in order:
//   1. the page loads and an anonymous visitor (x-device-id) gets a home feed with products;
//   2. signing in (GET /dev/token, then authorization: Bearer) gives that user's feed;
//   3. clicking a card of the first module opens its product page, and TrackEvents accepts the
//      CLICK and the VIEW;
//   4. "Add to cart" is accepted by TrackEvents;
//   5. back on the home feed, StreamHomeFeed delivers a new feed: the "updated" indicator shows,
//      and the "recently viewed" module contains the item or the "for you" items changed;
//   6. no uncaught error happened in the page.
// Exit status 0 when all hold, 1 otherwise (with the failing step, the page's error messages and
// the browser console), also when the overall timeout (60 s) runs out.

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { fail, readModules, run, waitForPage, waitForTracked } from "./harness.mjs";

const USAGE = "usage: node tests/storefront.mjs GATEWAY_URL [--screenshot FILE] [--user ID] [--timeout SECONDS]";

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      screenshot: { type: "string" },
      user: { type: "string" },
      timeout: { type: "string", default: "60" },
      "update-timeout": { type: "string", default: "20" },
      chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
    },
  });
} catch (error) {
  console.error(`${error.message}\n${USAGE}`);
  process.exit(2);
}
const { values, positionals } = args;
if (positionals.length !== 1 || !/^https?:\/\//.test(positionals[0])) {
  console.error(USAGE);
  process.exit(2);
}
const base = positionals[0].replace(/\/+$/, "");
// A new user every run, so the feed starts cold whatever the gateway remembers.
const user = values.user ?? `e2e-${randomUUID().slice(0, 8)}`;
const updateTimeoutMs = Number(values["update-timeout"]) * 1000;

await run({
  name: "storefront",
  chromiumPath: values.chromium,
  timeoutSeconds: Number(values.timeout),
  failureScreenshot: values.screenshot?.replace(/(\.png)?$/, "-failure.png"),
  viewport: { width: 412, height: 915 },
  body: async ({ page, step }) => {
    await step(`open ${base}/`, async () => {
      const response = await page.goto(`${base}/`, { waitUntil: "domcontentloaded" });
      if (!response?.ok()) fail(`GET / answered ${response?.status()}`);
      await waitForPage(page, "the app started", () => document.getElementById("app")?.dataset.state === "ready");
    });

    await step("anonymous visitor gets a home feed (x-device-id)", async () => {
      await waitForPage(page, "an anonymous feed with products", () => {
        const feed = document.querySelector("[data-testid=feed]");
        return (
          feed?.getAttribute("aria-busy") === "false" &&
          feed.dataset.identity?.startsWith("device:") &&
          feed.querySelector("[data-testid=product-card]")
        );
      });
    });

    await step(`sign in as ${user} (GET /dev/token)`, async () => {
      await page.getByTestId("signin-input").fill(user);
      await page.getByTestId("signin-button").click();
      await waitForPage(
        page,
        `"signed in as ${user}"`,
        (user) => {
          const problem = document.querySelector("[data-testid=error]:not([hidden]) [data-source=sign-in] .banner-text");
          if (problem) return { banner: problem.textContent };
          return document.querySelector("[data-testid=signed-in-as]")?.textContent.includes(user) && { ok: true };
        },
        user,
      ).then((r) => r.banner && fail(`sign-in failed: ${r.banner}`));
      await waitForPage(
        page,
        `${user}'s home feed`,
        (user) => {
          const feed = document.querySelector("[data-testid=feed]");
          return (
            feed?.getAttribute("aria-busy") === "false" &&
            feed.dataset.identity === `user:${user}` &&
            feed.querySelector("[data-testid=feed-module][data-module-state=READY] [data-testid=product-card]")
          );
        },
        user,
      );
    });

    const before = await step("record the feed", async () => {
      const modules = await readModules(page, "feed-module");
      const first = modules.find((m) => m.state === "READY" && m.items.length > 0);
      if (!first) fail("no module with items");
      const forYou = modules.find((m) => m.kind === "FOR_YOU")?.items ?? [];
      const updates = await page.evaluate(() => window.__tailorStorefront.feedUpdates());
      console.log(`     modules: ${modules.map((m) => `${m.kind}/${m.state}(${m.items.length})`).join(", ")}`);
      console.log(`     first module ${first.kind} "${first.title}": ${first.items.join(", ")}`);
      return { first, forYou, updates };
    });

    // Open cards of the first module until one can be put in the cart (the first may be sold out).
    let chosen;
    for (const itemId of before.first.items.slice(0, 3)) {
      await step(`open the product page of ${itemId} (CLICK and VIEW tracked)`, async () => {
        await page.locator(`[data-testid=feed] [data-testid=product-card][data-item-id="${cssEscape(itemId)}"]`).first().click();
        await waitForPage(
          page,
          `the product page of ${itemId}`,
          (itemId) => {
            const root = document.querySelector("[data-testid=product-page]");
            if (root?.dataset.itemId !== itemId) return false;
            if (root.dataset.state === "error") return { error: root.textContent };
            return root.dataset.state === "ready" && { title: root.querySelector("[data-testid=product-title]")?.textContent };
          },
          itemId,
        ).then((r) => (r.error ? fail(`product page error: ${r.error}`) : console.log(`     "${r.title}"`)));
        await waitForTracked(page, "CLICK", itemId);
        await waitForTracked(page, "VIEW", itemId);
      });
      if (await page.getByTestId("add-to-cart").isEnabled()) {
        chosen = itemId;
        break;
      }
      console.log(`     ${itemId} cannot be bought now; trying the next card`);
      await page.getByTestId("back").click();
    }
    if (!chosen) fail("none of the first three cards could be added to the cart");

    await step(`add ${chosen} to the cart (ADD_TO_CART tracked)`, async () => {
      await page.getByTestId("add-to-cart").click();
      await waitForTracked(page, "ADD_TO_CART", chosen);
    });

    await step("go back to the home feed", async () => {
      await page.getByTestId("back").click();
      await waitForPage(page, "the home view", () => document.getElementById("app")?.dataset.view === "home");
      await page.getByTestId("feed").waitFor({ state: "visible" });
    });

    await step(`StreamHomeFeed delivers an updated feed (within ${updateTimeoutMs / 1000} s)`, async () => {
      const seen = await waitForPage(
        page,
        'an updated feed with the item in "recently viewed" or new "for you" items',
        ({ updates, itemId, forYou }) => {
          if (window.__tailorStorefront.feedUpdates() <= updates) return false;
          const indicator = document.querySelector("[data-testid=feed-updated]");
          if (!indicator || indicator.hidden) return false;
          const items = (kind) =>
            [...document.querySelectorAll(`[data-testid=feed-module][data-module-kind=${kind}] [data-testid=product-card]`)].map(
              (c) => c.dataset.itemId,
            );
          const recent = items("RECENTLY_VIEWED");
          const nowForYou = items("FOR_YOU");
          const inRecent = recent.includes(itemId);
          const forYouChanged = nowForYou.join() !== forYou.join();
          return (inRecent || forYouChanged) && { inRecent, forYouChanged, recent, nowForYou, indicator: indicator.textContent };
        },
        { updates: before.updates, itemId: chosen, forYou: before.forYou },
        updateTimeoutMs,
      );
      console.log(`     indicator: "${seen.indicator}"`);
      console.log(`     recently viewed: ${seen.recent.join(", ") || "(none)"}${seen.inRecent ? "  ← contains " + chosen : ""}`);
      console.log(`     for you: ${seen.nowForYou.join(", ")}${seen.forYouChanged ? "  ← changed" : ""}`);
    });

    if (values.screenshot) {
      await step(`screenshot ${values.screenshot}`, async () => {
        await page.evaluate(() => window.scrollTo(0, 0));
        // A still picture: images finished (or turned into placeholders), the "updated" flash
        // over, the cart toast gone. Best effort: a slow image must not fail the test.
        await waitForPage(
          page,
          "a settled page",
          () =>
            [...document.images].every((img) => img.complete) &&
            document.getAnimations().length === 0 &&
            document.querySelector("[data-testid=toast]")?.hidden,
          null,
          5000,
        ).catch(() => {});
        await page.screenshot({ path: values.screenshot, fullPage: true });
      });
    }
  },
});

/** Item ids come from the server: quote them safely inside an attribute selector. */
function cssEscape(value) {
  return value.replace(/["\\]/g, "\\$&");
}
