// Rendering of feed modules and product cards, shared by the home feed and the product page.

import { h } from "./dom.js";
import { formatMoney } from "./format.js";
import {
  ModuleKind,
  ModuleState,
  type FeedModule,
  type ProductCard,
} from "./gen/tailor/mobile/v1/mobile_pb.js";

/** The route of a product page. */
export function productHref(itemId: string): string {
  return `#/product/${encodeURIComponent(itemId)}`;
}

/**
 * An image that turns into a neutral placeholder when there is no URL or it fails to load, so
 * a broken catalog image never shows the browser's broken-image icon.
 */
export function productImage(url: string, className: string): HTMLElement {
  const placeholder = () =>
    h("div", { class: `${className} img-placeholder`, "data-testid": "image-placeholder", "aria-hidden": "true" });
  if (!url) return placeholder();
  const img = h("img", {
    class: className,
    src: url,
    alt: "",
    loading: "lazy",
    decoding: "async",
    referrerpolicy: "no-referrer",
  });
  img.addEventListener("error", () => img.replaceWith(placeholder()), { once: true });
  return img;
}

/** A product card; `onOpen` runs before the link opens the product page (to track the click). */
export function productCard(card: ProductCard, onOpen: (card: ProductCard) => void): HTMLElement {
  const price = formatMoney(card.price);
  return h(
    "a",
    {
      class: "card",
      href: productHref(card.itemId),
      "data-testid": "product-card",
      "data-item-id": card.itemId,
      onclick: () => onOpen(card),
    },
    productImage(card.imageUrl, "card-image"),
    h(
      "div",
      { class: "card-body" },
      h("h3", { class: "card-title", "data-testid": "card-title" }, card.title || card.itemId),
      price && h("p", { class: "card-price", "data-testid": "card-price" }, price),
      card.reason && h("p", { class: "card-reason", "data-testid": "card-reason" }, card.reason),
    ),
  );
}

/** "FOR_YOU", "RECENTLY_VIEWED", … ("UNSPECIFIED" when the server did not say). */
export function kindName(kind: ModuleKind): string {
  return ModuleKind[kind] ?? "UNSPECIFIED";
}

/**
 * A module section, or null when there is nothing to show: EMPTY modules (and READY ones
 * without items) are hidden, UNAVAILABLE ones become a discreet placeholder so the feed keeps
 * its shape while a backend is down.
 */
export function feedModule(
  module: FeedModule,
  testId: string,
  onOpen: (card: ProductCard) => void,
): HTMLElement | null {
  const attrs = {
    "data-testid": testId,
    "data-module-id": module.moduleId,
    "data-module-kind": kindName(module.kind),
  };
  if (module.state === ModuleState.UNAVAILABLE) {
    return h(
      "section",
      { ...attrs, class: "module module-unavailable", "data-module-state": "UNAVAILABLE" },
      module.title && h("h2", { class: "module-title" }, module.title),
      h("p", { class: "module-note", "data-testid": "module-unavailable" }, "Temporarily unavailable"),
    );
  }
  // UNSPECIFIED is treated like READY: a module with items is worth showing.
  if (module.state === ModuleState.EMPTY || module.items.length === 0) return null;
  return h(
    "section",
    { ...attrs, class: "module", "data-module-state": "READY" },
    module.title && h("h2", { class: "module-title", "data-testid": "module-title" }, module.title),
    h(
      "div",
      { class: "row", "data-testid": "module-items", role: "list" },
      ...module.items.map((card) => {
        const element = productCard(card, onOpen);
        element.setAttribute("role", "listitem");
        return element;
      }),
    ),
  );
}
