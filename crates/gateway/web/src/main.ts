// Tailor's storefront: a mobile-style shop page on the gateway's gRPC-web API.
//
// Routes live in the URL fragment (#/ and #/product/<id>) so the gateway only has to serve
// index.html at "/". The home feed stream keeps running while a product page is open, so the
// feed is current when the user comes back.

import { watchDeviceClass } from "./device.js";
import { h } from "./dom.js";
import { FeedView } from "./feed.js";
import { EventKind, type ProductCard } from "./gen/tailor/mobile/v1/mobile_pb.js";
import { identity } from "./identity.js";
import { ProductView } from "./product.js";
import { Tracker, type TrackedEntry } from "./track.js";

/** What the browser test reads (and a developer can inspect in the console). */
interface DebugHook {
  events: TrackedEntry[];
  feedUpdates(): number;
}

declare global {
  interface Window {
    __tailorStorefront?: DebugHook;
  }
}

/** Problems shown in the banner, one per source, so one source clearing its problem keeps others. */
class Problems {
  readonly element = h("div", { class: "banner", role: "alert", "data-testid": "error", hidden: true });
  private readonly current = new Map<string, string>();

  set(source: string, message: string | null): void {
    if (message) this.current.set(source, message);
    else this.current.delete(source);
    this.element.replaceChildren(
      ...[...this.current.entries()].map(([key, text]) =>
        h(
          "p",
          { class: "banner-line", "data-source": key },
          h("span", { class: "banner-text" }, text),
          h("button", { class: "dismiss", type: "button", "aria-label": "Dismiss", onclick: () => this.set(key, null) }, "×"),
        ),
      ),
    );
    this.element.hidden = this.current.size === 0;
  }
}

/** A short confirmation at the bottom of the screen. */
class Toast {
  readonly element = h("div", { class: "toast", "data-testid": "toast", role: "status", hidden: true });
  private timer?: ReturnType<typeof setTimeout>;

  show(text: string): void {
    this.element.textContent = text;
    this.element.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => (this.element.hidden = true), 2500);
  }
}

function start(root: HTMLElement): void {
  const problems = new Problems();
  const toast = new Toast();
  const tracker = new Tracker((message) => problems.set("tracking", message));
  let cartCount = 0;
  const cartBadge = h("span", { class: "cart", "data-testid": "cart-count", title: "Items in cart" }, "0");

  // A click on a card in any list: track it, then let the link open the product page.
  const onOpen = (card: ProductCard) => tracker.track(EventKind.CLICK, card.itemId);

  const account = h("div", { class: "account" });
  const renderAccount = () => {
    const user = identity.userId();
    if (user) {
      account.replaceChildren(
        h("span", { class: "signed-in", "data-testid": "signed-in-as" }, "Signed in as ", h("b", {}, user)),
        h("button", { class: "link", type: "button", "data-testid": "signout-button", onclick: () => identity.signOut() }, "Sign out"),
      );
      return;
    }
    const input = h("input", {
      class: "signin-input",
      "data-testid": "signin-input",
      name: "user",
      placeholder: "user id",
      autocomplete: "username",
      required: true,
      // The gateway's rule for development user ids.
      maxlength: 64,
      pattern: "[A-Za-z0-9._@\\-]{1,64}",
      title: "1-64 letters, digits or - _ . @",
      "aria-label": "User id",
    });
    const button = h("button", { class: "button small", type: "submit", "data-testid": "signin-button" }, "Sign in");
    const form = h("form", { class: "signin", "data-testid": "signin-form" }, input, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const userId = input.value.trim();
      if (!userId) return;
      button.disabled = true;
      identity.signIn(userId).then(
        () => problems.set("sign-in", null),
        (error: unknown) => {
          button.disabled = false;
          problems.set("sign-in", error instanceof Error ? error.message : String(error));
        },
      );
    });
    account.replaceChildren(h("span", { class: "anonymous", "data-testid": "anonymous" }, "Browsing as a guest"), form);
  };

  const feed = new FeedView({
    onOpen,
    onTheme: (theme) => {
      // The layout's theme styles the whole page, header included.
      root.className = `app theme-${theme}`;
      root.dataset.theme = theme;
    },
    onProblem: (message) => problems.set("feed", message),
    onSignedOut: (message) => {
      problems.set("sign-in", message);
      identity.signOut();
    },
  });

  let cameFromHome = false;
  const product = new ProductView(tracker, {
    onOpen,
    onBack: () => {
      // Back through history when we came from the feed (restores its scroll position too).
      if (cameFromHome) history.back();
      else location.hash = "#/";
    },
    onCart: (p) => {
      cartCount += 1;
      cartBadge.textContent = String(cartCount);
      toast.show(`Added “${p.title}” to your cart`);
    },
    onBuy: (p) => toast.show(`Thank you! “${p.title}” is ordered (demo: no payment is taken).`),
  });

  const header = h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/" }, "Tailor"),
    cartBadge,
    account,
  );
  const main = h("main", { class: "main" }, feed.element, product.element);
  root.replaceChildren(header, problems.element, main, toast.element);
  root.className = "app theme-default";

  let view: "home" | "product" | undefined;
  let homeScroll = 0;
  const route = () => {
    const match = /^#\/product\/(.+)$/.exec(location.hash);
    if (match) {
      if (view === "home") homeScroll = window.scrollY;
      cameFromHome = view === "home" || (view === "product" && cameFromHome);
      view = "product";
      feed.element.hidden = true;
      product.element.hidden = false;
      window.scrollTo(0, 0);
      void product.show(safeDecode(match[1]));
    } else {
      view = "home";
      product.element.hidden = true;
      feed.element.hidden = false;
      window.scrollTo(0, homeScroll);
    }
    root.dataset.view = view;
  };

  identity.onChange(() => {
    renderAccount();
    feed.restart();
  });
  // Crossing the phone/tablet width asks the gateway for the other layout.
  watchDeviceClass(() => feed.restart());
  window.addEventListener("hashchange", route);

  window.__tailorStorefront = { events: tracker.log, feedUpdates: () => feed.updates };

  renderAccount();
  route();
  feed.restart();
  root.dataset.state = "ready";
}

/** A route segment as typed; a malformed %-escape is taken literally rather than thrown. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Last resort: whatever goes wrong, say so on the page instead of leaving it blank. */
function showFatal(root: HTMLElement, error: unknown): void {
  console.error(error);
  root.dataset.state = "error";
  root.replaceChildren(
    h(
      "div",
      { class: "problem fatal", role: "alert", "data-testid": "fatal-error" },
      h("p", {}, "Sorry, the storefront could not start."),
      h("p", { class: "problem-detail" }, error instanceof Error ? error.message : String(error)),
      h("button", { class: "button", type: "button", onclick: () => location.reload() }, "Reload"),
    ),
  );
}

const root = document.getElementById("app");
if (root) {
  window.addEventListener("unhandledrejection", (event) => console.error("unhandled rejection:", event.reason));
  try {
    start(root);
  } catch (error) {
    showFatal(root, error);
  }
}
