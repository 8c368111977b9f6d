// The home feed, kept live by StreamHomeFeed.
//
// The stream sends the feed at once and again whenever the user's activity changes it. When it
// breaks (gateway restart, network change, deadline), the view keeps the last feed, says so,
// and reconnects with backoff; if no feed could be shown yet it falls back to GetHomeFeed once.

import { CALL_TIMEOUT_MS, describeError, isUnauthenticated, mobile } from "./api.js";
import { deviceClass, deviceName } from "./device.js";
import { h } from "./dom.js";
import { cssToken, formatTime } from "./format.js";
import { ImageSize, type HomeFeed, type ProductCard } from "./gen/tailor/mobile/v1/mobile_pb.js";
import { identity } from "./identity.js";
import { feedModule } from "./modules.js";

const MAX_BACKOFF_MS = 30_000;

export interface FeedHooks {
  /** A card was opened (to track the click). */
  onOpen(card: ProductCard): void;
  /** The layout's theme, for the whole page. */
  onTheme(theme: string): void;
  /** A problem worth telling the user about, or null when it is over. */
  onProblem(message: string | null): void;
  /** The user's sign-in is no longer accepted. */
  onSignedOut(message: string): void;
}

export class FeedView {
  readonly element: HTMLElement;
  /** Feeds rendered after the first one for the current identity (the debug hook reads it). */
  updates = 0;
  private readonly list: HTMLElement;
  private readonly status: HTMLElement;
  private readonly updated: HTMLElement;
  private controller?: AbortController;
  private rendered = false;

  constructor(private readonly hooks: FeedHooks) {
    this.status = h("span", { class: "stream-status", "data-testid": "stream-status", "data-state": "connecting" }, "Connecting…");
    this.updated = h("span", { class: "updated", "data-testid": "feed-updated", "data-updates": "0", hidden: true, "aria-live": "polite" });
    this.list = h("div", { class: "feed", "data-testid": "feed", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading your feed…"));
    this.element = h("div", { class: "home" }, h("div", { class: "feed-bar" }, this.status, this.updated), this.list);
  }

  /** (Re)starts the stream, e.g. after sign-in or when the device class changes. */
  restart(): void {
    this.controller?.abort();
    this.controller = new AbortController();
    this.rendered = false;
    this.updates = 0;
    this.updated.hidden = true;
    this.updated.dataset.updates = "0";
    this.list.setAttribute("aria-busy", "true");
    void this.run(this.controller.signal);
  }

  private async run(signal: AbortSignal): Promise<void> {
    let backoff = 1000;
    while (!signal.aborted) {
      this.setStatus("connecting", "Connecting…");
      try {
        const device = deviceClass();
        for await (const message of mobile.streamHomeFeed({ deviceClass: device }, { signal })) {
          if (signal.aborted) return;
          backoff = 1000;
          this.setStatus("live", "Live");
          this.hooks.onProblem(null);
          if (message.feed) this.render(message.feed, device);
        }
        // The server ended the stream (e.g. its maximum stream age): reconnect promptly.
        backoff = 1000;
      } catch (error) {
        if (signal.aborted) return;
        const info = describeError(error);
        if (isUnauthenticated(error) && identity.userId()) {
          this.hooks.onSignedOut(`Your sign-in was not accepted (${info.code}: ${info.message}); you are browsing anonymously.`);
          return; // signing out restarts the stream
        }
        this.hooks.onProblem(`Live updates paused (${info.code}): ${info.message}`);
        if (!this.rendered) await this.fallback(signal);
      }
      if (signal.aborted) return;
      this.setStatus("offline", `Reconnecting in ${Math.round(backoff / 1000)} s`);
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  /** One GetHomeFeed so the page shows something while the stream is down. */
  private async fallback(signal: AbortSignal): Promise<void> {
    const device = deviceClass();
    try {
      const response = await mobile.getHomeFeed({ deviceClass: device }, { signal, timeoutMs: CALL_TIMEOUT_MS });
      if (response.feed && !signal.aborted) this.render(response.feed, device);
    } catch (error) {
      if (signal.aborted) return;
      const info = describeError(error);
      this.list.replaceChildren(
        h(
          "div",
          { class: "problem", "data-testid": "feed-error", role: "alert" },
          h("p", {}, "We could not load your feed right now."),
          h("p", { class: "problem-detail" }, `${info.code}: ${info.message}`),
        ),
      );
      this.list.setAttribute("aria-busy", "false");
    }
  }

  private render(feed: HomeFeed, device: number): void {
    const layout = feed.layout;
    const theme = cssToken(layout?.theme || "default");
    this.hooks.onTheme(theme);

    // Keep each row where the user scrolled it: a live update must not yank the content away.
    const scroll = new Map<string, number>();
    for (const row of this.list.querySelectorAll<HTMLElement>("[data-module-id] .row")) {
      const id = row.parentElement?.dataset.moduleId;
      if (id) scroll.set(id, row.scrollLeft);
    }

    const sections = feed.modules
      .map((module) => feedModule(module, "feed-module", (card) => this.hooks.onOpen(card)))
      .filter((section): section is HTMLElement => section !== null);
    this.list.className = `feed img-${imageSizeName(layout?.imageSize)}`;
    this.list.style.setProperty("--columns", String(layout?.columns || defaultColumns(device)));
    this.list.dataset.identity = identity.key();
    this.list.dataset.device = deviceName(device);
    this.list.dataset.theme = theme;
    this.list.dataset.variant = feed.variant;
    this.list.setAttribute("aria-busy", "false");
    this.list.replaceChildren(
      ...(sections.length > 0
        ? sections
        : [h("p", { class: "empty", "data-testid": "feed-empty" }, "Nothing to show yet — have a look around.")]),
    );
    for (const row of this.list.querySelectorAll<HTMLElement>("[data-module-id] .row")) {
      const left = scroll.get(row.parentElement?.dataset.moduleId ?? "");
      if (left) row.scrollLeft = left;
    }

    if (this.rendered) {
      this.updates += 1;
      this.updated.hidden = false;
      this.updated.dataset.updates = String(this.updates);
      this.updated.textContent = `Updated for you · ${formatTime(new Date())}`;
      // Restart the highlight animation on every update.
      this.updated.classList.remove("flash");
      void this.updated.offsetWidth;
      this.updated.classList.add("flash");
    }
    this.rendered = true;
  }

  private setStatus(state: string, text: string): void {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }
}

function imageSizeName(size: ImageSize | undefined): string {
  switch (size) {
    case ImageSize.SMALL:
      return "small";
    case ImageSize.LARGE:
      return "large";
    default:
      return "medium";
  }
}

/** Columns when the layout does not say: denser on tablets. */
function defaultColumns(device: number): number {
  return deviceName(device) === "tablet" ? 4 : 2;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
