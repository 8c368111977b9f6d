// The product page: details, "similar" and "bought together", add to cart and buy.

import { CALL_TIMEOUT_MS, describeError, isCanceled, mobile } from "./api.js";
import { deviceClass } from "./device.js";
import { h } from "./dom.js";
import { formatMoney } from "./format.js";
import {
  EventKind,
  type FeedModule,
  type GetProductPageResponse,
  type Product,
  type ProductCard,
} from "./gen/tailor/mobile/v1/mobile_pb.js";
import { feedModule, productImage } from "./modules.js";
import type { Tracker } from "./track.js";

export interface ProductHooks {
  onOpen(card: ProductCard): void;
  onBack(): void;
  onCart(product: Product): void;
  onBuy(product: Product): void;
}

export class ProductView {
  readonly element: HTMLElement;
  private controller?: AbortController;

  constructor(
    private readonly tracker: Tracker,
    private readonly hooks: ProductHooks,
  ) {
    this.element = h("div", { class: "product-page", "data-testid": "product-page", "data-state": "idle" });
  }

  async show(itemId: string): Promise<void> {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.element.dataset.itemId = itemId;
    this.element.dataset.state = "loading";
    this.element.replaceChildren(this.backButton(), h("p", { class: "loading" }, "Loading…"));
    try {
      const response = await mobile.getProductPage(
        { itemId, deviceClass: deviceClass() },
        { signal: controller.signal, timeoutMs: CALL_TIMEOUT_MS },
      );
      if (controller.signal.aborted) return;
      this.render(itemId, response);
    } catch (error) {
      if (controller.signal.aborted || isCanceled(error)) return;
      const info = describeError(error);
      this.element.dataset.state = "error";
      this.element.replaceChildren(
        this.backButton(),
        h(
          "div",
          { class: "problem", "data-testid": "product-error", role: "alert" },
          h("p", {}, info.code === "NOT_FOUND" ? "This product does not exist (any more)." : "We could not load this product."),
          h("p", { class: "problem-detail" }, `${info.code}: ${info.message}`),
          h("button", { class: "button", type: "button", onclick: () => void this.show(itemId) }, "Try again"),
        ),
      );
    }
  }

  private render(itemId: string, response: GetProductPageResponse): void {
    const product = response.product;
    if (!product) {
      this.element.dataset.state = "error";
      this.element.replaceChildren(
        this.backButton(),
        h("p", { class: "problem", "data-testid": "product-error" }, "The server sent no product."),
      );
      return;
    }
    const price = formatMoney(product.price);
    const related = [
      this.related(response.similar, "similar", "Similar items"),
      this.related(response.boughtTogether, "bought_together", "Frequently bought together"),
    ];
    this.element.dataset.state = "ready";
    this.element.replaceChildren(
      this.backButton(),
      h(
        "article",
        { class: "product" },
        productImage(product.imageUrl, "product-image"),
        h(
          "div",
          { class: "product-info" },
          h("h1", { class: "product-title", "data-testid": "product-title" }, product.title || product.itemId),
          h("p", { class: "product-meta" }, [product.brand, product.category].filter(Boolean).join(" · ")),
          price && h("p", { class: "product-price", "data-testid": "product-price" }, price),
          h(
            "p",
            { class: product.available ? "stock in-stock" : "stock out-of-stock", "data-testid": "product-availability" },
            product.available ? "In stock" : "Currently unavailable",
          ),
          h(
            "div",
            { class: "actions" },
            h(
              "button",
              {
                class: "button secondary",
                type: "button",
                "data-testid": "add-to-cart",
                disabled: !product.available,
                onclick: () => {
                  this.tracker.track(EventKind.ADD_TO_CART, product.itemId, { quantity: 1 });
                  this.hooks.onCart(product);
                },
              },
              "Add to cart",
            ),
            h(
              "button",
              {
                class: "button",
                type: "button",
                "data-testid": "buy",
                disabled: !product.available,
                onclick: () => {
                  this.tracker.track(EventKind.PURCHASE, product.itemId, { quantity: 1, unitPrice: product.price });
                  this.hooks.onBuy(product);
                },
              },
              "Buy",
            ),
          ),
          product.description && h("p", { class: "product-description" }, product.description),
          product.tags.length > 0 &&
            h("ul", { class: "tags" }, ...product.tags.map((tag) => h("li", { class: "tag" }, tag))),
        ),
      ),
      ...related.filter((section): section is HTMLElement => section !== null),
    );
    // The page was shown: that is the view (the click that led here was tracked already).
    this.tracker.track(EventKind.VIEW, itemId);
  }

  /** A related module; its role attribute tells "similar" from "bought together". */
  private related(module: FeedModule | undefined, role: string, fallbackTitle: string): HTMLElement | null {
    if (!module) return null;
    const section = feedModule(
      { ...module, title: module.title || fallbackTitle },
      "product-module",
      (card) => this.hooks.onOpen(card),
    );
    section?.setAttribute("data-module-role", role);
    return section;
  }

  private backButton(): HTMLElement {
    return h(
      "button",
      { class: "back", type: "button", "data-testid": "back", onclick: () => this.hooks.onBack() },
      "← Back",
    );
  }
}
