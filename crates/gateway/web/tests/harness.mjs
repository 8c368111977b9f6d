// What the browser scripts share: launching Debian's Chromium through playwright-core, an
// overall deadline so a script never hangs, named steps, and a useful report on failure
// (the step, the page's own error messages, the browser console, a screenshot).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/**
 * Chromium flags for this closed network: without the background-networking ones Chromium's
 * own connections (updates, sync, field trials) are refused and slow everything down.
 */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A failed expectation. */
export function fail(message) {
  throw new Error(message);
}

/**
 * Runs `body({ page, step, viewport })` in a fresh browser profile and exits the process: 0 when
 * every step passed, 1 otherwise (or when `timeoutSeconds` ran out).
 */
export async function run({ name, chromiumPath, timeoutSeconds, failureScreenshot, viewport, body }) {
  const started = Date.now();
  let current = "start";
  let context;
  let page;
  let profile;
  const consoleLines = [];
  const pageErrors = [];

  const report = async (message) => {
    console.error(`\nFAIL ${name}: ${current}: ${message}`);
    if (page) {
      try {
        const state = await page.evaluate(() => ({
          url: location.href,
          banner: [...document.querySelectorAll("[data-testid=error]:not([hidden]) .banner-text")]
            .map((e) => e.textContent)
            .join(" | "),
          problems: [...document.querySelectorAll("[data-testid$=-error]")].map((e) => e.textContent),
        }));
        console.error(`  page: ${state.url}`);
        if (state.banner) console.error(`  page banner: ${state.banner}`);
        for (const problem of state.problems) console.error(`  page error: ${problem}`);
      } catch {
        // The page may be gone; the message above is what matters.
      }
      if (failureScreenshot) {
        await page
          .screenshot({ path: failureScreenshot, fullPage: true, timeout: 5000 })
          .then(() => console.error(`  screenshot: ${failureScreenshot}`))
          .catch(() => {});
      }
    }
    printConsole(consoleLines, pageErrors, console.error);
  };

  const close = async () => {
    await context?.close().catch(() => {});
    if (profile) await rm(profile, { recursive: true, force: true }).catch(() => {});
  };

  // The overall deadline: report where it was stuck, then exit whatever the browser does.
  let timedOut = false;
  const deadline = setTimeout(async () => {
    timedOut = true;
    const exit = setTimeout(() => process.exit(1), 5000);
    await report(`timed out after ${timeoutSeconds} s`);
    await close();
    clearTimeout(exit);
    process.exit(1);
  }, timeoutSeconds * 1000);

  const step = async (title, action) => {
    current = title;
    const t0 = Date.now();
    const result = await action();
    console.log(`ok   ${title} (${Date.now() - t0} ms)`);
    return result;
  };

  try {
    profile = await mkdtemp(join(tmpdir(), "tailor-storefront-chromium-"));
    current = `launch ${chromiumPath}`;
    // A persistent context on a fresh directory: a clean profile for every run.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
      locale: "en-US",
      timezoneId: "UTC",
      timeout: 30_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") {
        const where = message.location()?.url;
        consoleLines.push(`${message.type()}: ${message.text()}${where ? ` (${where})` : ""}`);
      }
    });
    page.on("pageerror", (error) => pageErrors.push(error.message));

    await body({ page, step });

    current = "no uncaught errors or Content-Security-Policy violations in the page";
    if (pageErrors.length > 0) fail(`${pageErrors.length} uncaught error(s): ${pageErrors.join(" | ")}`);
    const csp = consoleLines.filter((line) => line.includes("Content Security Policy"));
    if (csp.length > 0) fail(`the page broke its Content-Security-Policy: ${csp.join(" | ")}`);
    clearTimeout(deadline);
    await close();
    if (consoleLines.length > 0) printConsole(consoleLines, [], console.log);
    console.log(`PASS ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    process.exit(0);
  } catch (error) {
    // After the deadline, closing the browser fails whatever step was waiting: already reported.
    if (timedOut) return;
    clearTimeout(deadline);
    // Playwright's messages say what it waited for; a stack adds nothing but noise.
    await report(error?.message ?? String(error));
    await close();
    process.exit(1);
  }
}

function printConsole(lines, pageErrors, print) {
  if (lines.length === 0 && pageErrors.length === 0) return;
  print("  browser console (errors and warnings):");
  for (const line of lines) print(`    ${line}`);
  for (const error of pageErrors) print(`    uncaught: ${error}`);
}

/**
 * Waits until `predicate(arg)`, evaluated in the page, returns a truthy value, and returns it.
 * Fails early, with the page's message, when the page shows a feed or fatal error — waiting out
 * the timeout would only hide the reason.
 *
 * Polls with page.evaluate from Node rather than page.waitForFunction: the latter evaluates
 * strings inside the page, which a Content-Security-Policy without 'unsafe-eval' (the fake
 * gateway's, and hopefully the real one's) forbids.
 */
export async function waitForPage(page, what, predicate, arg, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await page.evaluate(predicate, arg);
    if (value) return value;
    const problem = await page.evaluate(
      () => document.querySelector("[data-testid=feed-error], [data-testid=fatal-error]")?.textContent,
    );
    if (problem) fail(`${what}: the page shows an error instead: ${problem}`);
    if (Date.now() >= deadline) fail(`${what}: not seen within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Items of every rendered module of a container, in page order. */
export function readModules(page, containerTestId) {
  return page.evaluate((testId) => {
    return [...document.querySelectorAll(`[data-testid=${testId}]`)].map((section) => ({
      id: section.dataset.moduleId,
      kind: section.dataset.moduleKind,
      state: section.dataset.moduleState,
      title: section.querySelector(".module-title")?.textContent ?? "",
      items: [...section.querySelectorAll("[data-testid=product-card]")].map((card) => card.dataset.itemId),
    }));
  }, containerTestId);
}

/** Waits until the tracker reports `kind` for `itemId` as accepted by the gateway. */
export async function waitForTracked(page, kind, itemId) {
  const entry = await waitForPage(
    page,
    `${kind} event for ${itemId} acknowledged by TrackEvents`,
    ({ kind, itemId }) =>
      (window.__tailorStorefront?.events ?? []).find(
        (e) => e.kind === kind && e.itemId === itemId && ["accepted", "rejected", "failed"].includes(e.state),
      ),
    { kind, itemId },
  );
  if (entry.state !== "accepted") fail(`TrackEvents did not accept ${kind} ${itemId}: ${entry.state}: ${entry.reason}`);
  return entry;
}
