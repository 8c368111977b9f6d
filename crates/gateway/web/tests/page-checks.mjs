#!/usr/bin/env node
// Rendering checks of the storefront against the fake gateway, whose canned data is known:
// module order and states (EMPTY hidden, UNAVAILABLE as a placeholder), layouts per device
// class, image placeholders, money formatting, a sold-out product, errors shown politely, an
// invalid sign-in, and a purchase. Only meaningful with tests/fake-gateway.mjs.
//
//   node tests/page-checks.mjs http://127.0.0.1:PORT [--timeout SECONDS] [--chromium PATH]

import { parseArgs } from "node:util";
import { fail, readModules, run, waitForPage, waitForTracked } from "./harness.mjs";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    timeout: { type: "string", default: "60" },
    chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
  },
});
if (positionals.length !== 1) {
  console.error("usage: node tests/page-checks.mjs FAKE_GATEWAY_URL");
  process.exit(2);
}
const base = positionals[0].replace(/\/+$/, "");

function expectEqual(what, actual, expected) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    fail(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** The feed, rendered for a fresh anonymous visitor of `path`. */
async function openFeed(page, path) {
  await page.goto(`${base}${path}`, { waitUntil: "domcontentloaded" });
  return waitForPage(page, "the feed", () => {
    const feed = document.querySelector("[data-testid=feed]");
    if (feed?.getAttribute("aria-busy") !== "false") return false;
    const row = feed.querySelector(".row");
    return {
      device: feed.dataset.device,
      theme: document.getElementById("app").dataset.theme,
      imageClass: [...feed.classList].find((c) => c.startsWith("img-")),
      columns: getComputedStyle(feed).getPropertyValue("--columns").trim(),
      cardWidth: row?.querySelector("[data-testid=product-card]")?.getBoundingClientRect().width,
      rowWidth: row?.getBoundingClientRect().width,
    };
  });
}

async function openProduct(page, itemId) {
  await page.evaluate((id) => (location.hash = `#/product/${encodeURIComponent(id)}`), itemId);
  return waitForPage(
    page,
    `the product page of ${itemId}`,
    (id) => {
      const root = document.querySelector("[data-testid=product-page]");
      if (root?.dataset.itemId !== id || !["ready", "error"].includes(root.dataset.state)) return false;
      const text = (testId) => root.querySelector(`[data-testid=${testId}]`)?.textContent ?? null;
      return {
        state: root.dataset.state,
        title: text("product-title"),
        price: text("product-price"),
        availability: text("product-availability"),
        error: text("product-error"),
        imagePlaceholder: !!root.querySelector(".product-image.img-placeholder"),
        addToCartEnabled: !root.querySelector("[data-testid=add-to-cart]")?.disabled,
        buyEnabled: !root.querySelector("[data-testid=buy]")?.disabled,
        related: [...root.querySelectorAll("[data-testid=product-module]")].map((m) => m.dataset.moduleRole),
      };
    },
    itemId,
  );
}

await run({
  name: "page checks (fake gateway)",
  chromiumPath: values.chromium,
  timeoutSeconds: Number(values.timeout),
  viewport: { width: 412, height: 915 },
  body: async ({ page, step }) => {
    await step("phone: modules in server order, EMPTY hidden, UNAVAILABLE as a placeholder", async () => {
      const feed = await openFeed(page, "/");
      expectEqual("device class", feed.device, "phone");
      expectEqual("theme of a cold start", feed.theme, "default");
      expectEqual("image size class", feed.imageClass, "img-medium");
      expectEqual("columns", feed.columns, "2");
      // Two cards and a peek of the third.
      if (!(feed.cardWidth > feed.rowWidth / 3 && feed.cardWidth < feed.rowWidth / 2)) {
        fail(`a card is ${feed.cardWidth}px wide in a ${feed.rowWidth}px row; expected two columns and a peek`);
      }
      const modules = await readModules(page, "feed-module");
      expectEqual(
        "modules (for_you, because_you_viewed EMPTY, recently_viewed EMPTY, trending UNAVAILABLE, popular)",
        modules.map((m) => `${m.id}:${m.kind}:${m.state}:${m.items.length}`),
        ["for_you:FOR_YOU:READY:8", "trending:TRENDING_IN_YOUR_CATEGORIES:UNAVAILABLE:0", "popular:POPULAR:READY:8"],
      );
      const note = await page.locator("[data-module-id=trending] [data-testid=module-unavailable]").textContent();
      expectEqual("placeholder text", note, "Temporarily unavailable");
      const card = await page.evaluate(() => {
        const el = document.querySelector("[data-module-id=popular] [data-item-id=bk-dune]");
        return {
          title: el?.querySelector("[data-testid=card-title]")?.textContent,
          price: el?.querySelector("[data-testid=card-price]")?.textContent,
          reason: el?.querySelector("[data-testid=card-reason]")?.textContent,
          href: el?.getAttribute("href"),
        };
      });
      expectEqual("the Dune card", card, { title: "Dune", price: "CN¥59.00", reason: "Popular this week", href: "#/product/bk-dune" });
    });

    await step("?device=low_end: small images, three columns, four items per module", async () => {
      const feed = await openFeed(page, "/?device=low_end");
      expectEqual("device class", feed.device, "low_end");
      expectEqual("image size class", feed.imageClass, "img-small");
      expectEqual("columns", feed.columns, "3");
      const modules = await readModules(page, "feed-module");
      expectEqual("items per module", modules.filter((m) => m.state === "READY").map((m) => m.items.length), [4, 4]);
    });

    await step("tablet viewport: large images, four columns", async () => {
      await page.setViewportSize({ width: 1024, height: 768 });
      const feed = await openFeed(page, "/");
      expectEqual("device class", feed.device, "tablet");
      expectEqual("image size class", feed.imageClass, "img-large");
      expectEqual("columns", feed.columns, "4");
      await page.setViewportSize({ width: 412, height: 915 });
    });

    await step("product page: details, related modules, money in minor units", async () => {
      const dune = await openProduct(page, "bk-dune");
      expectEqual("Dune", [dune.state, dune.title, dune.price, dune.availability], ["ready", "Dune", "CN¥59.00", "In stock"]);
      expectEqual("related modules", dune.related, ["similar", "bought_together"]);
      // 2800 JPY has no minor unit: 2800 minor units are ¥2,800, not ¥28.00.
      const kendama = await openProduct(page, "ty-kendama");
      expectEqual("a yen price", kendama.price, "¥2,800");
    });

    await step("images: placeholder when the URL is empty or the image fails to load", async () => {
      expectEqual("no image URL", (await openProduct(page, "bk-nocover")).imagePlaceholder, true);
      await openProduct(page, "el-broken");
      await waitForPage(page, "the broken image replaced by a placeholder", () =>
        document.querySelector("[data-testid=product-page] .product-image.img-placeholder"),
      );
      // Cards too: el-broken is among the similar items of another radio-ish product.
      await openProduct(page, "el-speaker");
      await waitForPage(page, "the broken card image replaced by a placeholder", () =>
        document.querySelector("[data-module-role=similar] [data-item-id=el-broken] .card-image.img-placeholder"),
      );
    });

    await step("sold out: Add to cart and Buy are disabled", async () => {
      const stove = await openProduct(page, "od-soldout");
      expectEqual("sold out", [stove.availability, stove.addToCartEnabled, stove.buyEnabled], ["Currently unavailable", false, false]);
    });

    await step("unknown product: NOT_FOUND shown politely", async () => {
      const missing = await openProduct(page, "no-such-item");
      expectEqual("state", missing.state, "error");
      if (!missing.error?.includes("NOT_FOUND: product no-such-item not found")) fail(`error text: ${missing.error}`);
    });

    await step("buy: PURCHASE tracked with its unit price (the fake refuses it without)", async () => {
      await openProduct(page, "bk-dune");
      await page.getByTestId("buy").click();
      await waitForTracked(page, "PURCHASE", "bk-dune");
      await page.getByTestId("toast").waitFor({ state: "visible" });
    });

    await step("stream dropped by the gateway (UNAVAILABLE): reconnects and keeps updating", async () => {
      await page.goto(`${base}/`, { waitUntil: "domcontentloaded" });
      await waitForPage(page, "a live stream", () => document.querySelector("[data-testid=stream-status]")?.dataset.state === "live");
      const dropped = await page.evaluate(() => fetch("/fake/drop-streams", { method: "POST" }).then((r) => r.json()));
      if (dropped.dropped < 1) fail(`the fake had no stream to drop: ${JSON.stringify(dropped)}`);
      const paused = await waitForPage(page, "the paused notice", () =>
        document.querySelector("[data-testid=error]:not([hidden]) [data-source=feed] .banner-text")?.textContent,
      );
      if (!paused.includes("UNAVAILABLE")) fail(`notice: ${paused}`);
      await waitForPage(page, "the stream live again", () => document.querySelector("[data-testid=stream-status]")?.dataset.state === "live");
      const updates = await page.evaluate(() => window.__tailorStorefront.feedUpdates());
      await openProduct(page, "kt-wok");
      await waitForTracked(page, "VIEW", "kt-wok");
      await page.getByTestId("back").click();
      await waitForPage(
        page,
        "a feed update over the new stream",
        (updates) =>
          window.__tailorStorefront.feedUpdates() > updates &&
          document.querySelector("[data-module-kind=RECENTLY_VIEWED] [data-item-id=kt-wok]"),
        updates,
      );
      await waitForPage(page, "the notice gone", () => !document.querySelector("[data-source=feed]"));
    });

    await step("a token the gateway refuses: signed out with a message, feed continues anonymously", async () => {
      await page.evaluate(() => {
        localStorage.setItem("tailor.token", "not-a-jwt");
        localStorage.setItem("tailor.userId", "mallory");
      });
      await page.goto(`${base}/`, { waitUntil: "domcontentloaded" });
      const state = await waitForPage(page, "the sign-in problem and an anonymous feed", () => {
        const problem = document.querySelector("[data-testid=error]:not([hidden]) [data-source=sign-in] .banner-text");
        const feed = document.querySelector("[data-testid=feed]");
        return (
          problem &&
          feed?.dataset.identity?.startsWith("device:") &&
          feed.querySelector("[data-testid=product-card]") && {
            problem: problem.textContent,
            signInForm: !!document.querySelector("[data-testid=signin-form]"),
          }
        );
      });
      if (!state.problem.includes("UNAUTHENTICATED")) fail(`problem text: ${state.problem}`);
      expectEqual("sign-in form shown again", state.signInForm, true);
    });
  },
});
