#!/usr/bin/env node
// A fake Tailor gateway for developing and testing the storefront without the Rust system.
//
// It speaks the real contract — tailor.mobile.v1.MobileService over gRPC-web only, with the
// same identity headers as the gateway (`authorization: Bearer <jwt>` or `x-device-id`) — and
// serves what the gateway serves besides: the built page (dist/), `GET /dev/token?user=<id>`.
// `POST /fake/drop-streams` ends every open StreamHomeFeed with UNAVAILABLE (a gateway restart).
// Behind it is a canned catalog with a toy "personalization": views, clicks and cart adds move
// the user's interests, and StreamHomeFeed pushes a new feed shortly after each TrackEvents.
// Some data is deliberately awkward (an item without image, one whose image is missing, a
// sold-out item, a module that is always UNAVAILABLE, modules that start EMPTY) so the page's
// handling of them is exercised.
//
//   node tests/fake-gateway.mjs [--port 8090] [--host 127.0.0.1] [--dist DIR]
//                               [--update-delay MS] [--production] [--verbose]
//
// Imported, startFakeGateway() runs it in-process (tests/with-fake.mjs does).

import { readFile } from "node:fs/promises";
import http from "node:http";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  DeviceClass,
  EventKind,
  FeedModuleSchema,
  HomeFeedSchema,
  ImageSize,
  MobileService,
  ModuleKind,
  ModuleState,
} from "../src/gen/tailor/mobile/v1/mobile_pb.js";

const here = dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------------------------------------
// The catalog: [id, title, category, brand, price in fen, popularity, tags]

const CATALOG = [
  ["bk-dune", "Dune", "books", "Ace", 5900, 92, ["sci-fi", "classic"]],
  ["bk-threebody", "The Three-Body Problem", "books", "Tor", 6800, 88, ["sci-fi", "translated"]],
  ["bk-cookbook", "Salt, Fat, Acid, Heat", "books", "Simon & Schuster", 12900, 61, ["cooking"]],
  ["bk-atlas", "Atlas of Remote Islands", "books", "Penguin", 8800, 40, ["travel"]],
  ["bk-hobbit", "The Hobbit", "books", "HarperCollins", 4500, 79, ["fantasy", "classic"]],
  ["el-kindle", "Kindle Paperwhite", "electronics", "Amazon", 99900, 95, ["e-reader"]],
  ["el-earbuds", "Noise-cancelling Earbuds", "electronics", "Sony", 129900, 90, ["audio"]],
  ["el-charger", "65 W USB-C Charger", "electronics", "Anker", 19900, 83, ["charging"]],
  ["el-speaker", "Pocket Bluetooth Speaker", "electronics", "JBL", 39900, 70, ["audio", "outdoor"]],
  ["el-camera", "Instant Camera", "electronics", "Fujifilm", 59900, 58, ["photo"]],
  ["kt-kettle", "Gooseneck Kettle", "kitchen", "Fellow", 69900, 55, ["coffee"]],
  ["kt-grinder", "Burr Coffee Grinder", "kitchen", "Baratza", 109900, 52, ["coffee"]],
  ["kt-wok", "Carbon Steel Wok", "kitchen", "Yosukata", 29900, 66, ["cookware"]],
  ["kt-knife", "Chef's Knife 21 cm", "kitchen", "Victorinox", 34900, 63, ["cookware"]],
  ["kt-teapot", "Cast Iron Teapot", "kitchen", "Iwachu", 45900, 35, ["tea"]],
  ["od-tent", "Two-person Tent", "outdoor", "MSR", 259900, 47, ["camping"]],
  ["od-bottle", "Insulated Bottle 750 ml", "outdoor", "Hydro Flask", 27900, 81, ["hydration"]],
  ["od-headlamp", "Rechargeable Headlamp", "outdoor", "Petzl", 34900, 44, ["camping"]],
  ["od-pack", "Daypack 22 L", "outdoor", "Osprey", 79900, 50, ["hiking"]],
  ["ty-lego", "Lego Botanical Bonsai", "toys", "Lego", 39900, 77, ["building"]],
  ["ty-puzzle", "1000-piece Puzzle", "toys", "Ravensburger", 12900, 42, ["puzzle"]],
  ["ty-kite", "Stunt Kite", "toys", "HQ", 21900, 30, ["outdoor"]],
  ["bt-sunscreen", "Mineral Sunscreen SPF 50", "beauty", "La Roche-Posay", 16900, 73, ["skin"]],
  ["bt-serum", "Vitamin C Serum", "beauty", "The Ordinary", 9900, 68, ["skin"]],
  // Awkward ones: no image at all, an image that 404s, sold out, priced in yen.
  ["bk-nocover", "Untitled Notebook (no image)", "books", "Muji", 1500, 38, ["stationery"]],
  ["el-broken", "Retro Radio (image missing)", "electronics", "Tecsun", 25900, 36, ["audio"]],
  ["od-soldout", "Ultralight Stove (sold out)", "outdoor", "Jetboil", 89900, 60, ["camping"]],
  ["ty-kendama", "Kendama (imported)", "toys", "Yumu", 2800, 33, ["skill"], "JPY"],
].map(([id, title, category, brand, price, popularity, tags, currency = "CNY"]) => ({
  id,
  title,
  category,
  brand,
  price: { amountMinor: BigInt(price), currency },
  popularity,
  tags,
  available: id !== "od-soldout",
}));
const BY_ID = new Map(CATALOG.map((p) => [p.id, p]));
const COLORS = {
  books: ["#6d4c8d", "#b48ad6"],
  electronics: ["#1f4e79", "#5fa8e8"],
  kitchen: ["#8a4b22", "#e0a46b"],
  outdoor: ["#2e6b3f", "#87c79a"],
  toys: ["#a8322d", "#f08c7e"],
  beauty: ["#8c3a66", "#e7a1c4"],
};
// "Frequently bought together" in the fake: the top items of a complementary category.
const COMPLEMENT = { books: "kitchen", electronics: "outdoor", kitchen: "books", outdoor: "electronics", toys: "books" };
const BY_POPULARITY = [...CATALOG].sort((a, b) => b.popularity - a.popularity);

function imageUrl(product, size) {
  if (product.id === "bk-nocover") return "";
  if (product.id === "el-broken") return "/fake-img/missing.png";
  return `/fake-img/${product.id}.svg?size=${size}`;
}

function imageSvg(product) {
  const [dark, light] = COLORS[product.category] ?? ["#555", "#aaa"];
  const initials = product.title
    .split(/\s+/)
    .filter((w) => /^[A-Za-z0-9]/.test(w))
    .slice(0, 2)
    .map((w) => w[0].toUpperCase())
    .join("");
  const escape = (s) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 300">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="${light}"/><stop offset="1" stop-color="${dark}"/></linearGradient></defs>
<rect width="300" height="300" fill="url(#g)"/><circle cx="230" cy="70" r="46" fill="#fff" fill-opacity=".18"/>
<text x="150" y="170" text-anchor="middle" font-family="sans-serif" font-size="96" font-weight="700" fill="#fff">${escape(initials)}</text>
<text x="150" y="250" text-anchor="middle" font-family="sans-serif" font-size="22" fill="#fff" fill-opacity=".85">${escape(product.brand)}</text>
</svg>`;
}

// ---------------------------------------------------------------------------------------------
// Per-identity state and the toy personalization

class Shopper {
  viewed = []; // newest first
  bought = new Set();
  interest = new Map(); // category → weight
  version = 0;
  waiters = new Set();

  /** Resolves true when the state changes after `seen`, false when `signal` aborts. */
  changedSince(seen, signal) {
    if (this.version > seen) return Promise.resolve(true);
    return new Promise((resolvePromise) => {
      const done = (changed) => {
        this.waiters.delete(waiter);
        signal.removeEventListener("abort", onAbort);
        resolvePromise(changed);
      };
      const waiter = () => done(true);
      const onAbort = () => done(false);
      this.waiters.add(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  touch() {
    this.version += 1;
    for (const waiter of [...this.waiters]) waiter();
  }

  topCategory() {
    let best;
    for (const [category, weight] of this.interest) if (!best || weight > best[1]) best = [category, weight];
    return best?.[0];
  }
}

const WEIGHTS = {
  [EventKind.VIEW]: 1,
  [EventKind.CLICK]: 0.5,
  [EventKind.ADD_TO_CART]: 2,
  [EventKind.PURCHASE]: 3,
  [EventKind.REVIEW]: 1,
  [EventKind.SHARE]: 1,
  [EventKind.REMOVE_FROM_CART]: -1,
};

function card(product, size, reason) {
  return {
    itemId: product.id,
    title: product.title,
    price: product.price,
    imageUrl: imageUrl(product, size),
    category: product.category,
    brand: product.brand,
    reason,
  };
}

function module(moduleId, kind, title, items, size, reasonOf) {
  return create(FeedModuleSchema, {
    moduleId,
    kind,
    title,
    items: items.map((p) => card(p, size, reasonOf(p))),
    state: items.length > 0 ? ModuleState.READY : ModuleState.EMPTY,
  });
}

function layoutFor(shopper, device) {
  const top = shopper.topCategory();
  // The theme follows the shopper's taste, so personalization is visible at a glance.
  const theme = !top ? "default" : ["electronics", "toys"].includes(top) ? "bold" : "calm";
  if (device === DeviceClass.LOW_END) return { theme, imageSize: ImageSize.SMALL, columns: 3 };
  if (device === DeviceClass.TABLET) return { theme, imageSize: ImageSize.LARGE, columns: 4 };
  return { theme, imageSize: ImageSize.MEDIUM, columns: 2 };
}

function sizeName(layout) {
  return layout.imageSize === ImageSize.SMALL ? "small" : layout.imageSize === ImageSize.LARGE ? "large" : "medium";
}

function buildFeed(shopper, device) {
  const layout = layoutFor(shopper, device);
  const size = sizeName(layout);
  const n = device === DeviceClass.LOW_END ? 4 : 8;
  const score = (p) => p.popularity / 100 + 3 * (shopper.interest.get(p.category) ?? 0);
  const forYou = CATALOG.filter((p) => !shopper.viewed.includes(p.id) && !shopper.bought.has(p.id))
    .sort((a, b) => score(b) - score(a) || a.id.localeCompare(b.id))
    .slice(0, n);
  const last = BY_ID.get(shopper.viewed[0]);
  const similar = last
    ? BY_POPULARITY.filter((p) => p.category === last.category && p.id !== last.id).slice(0, n)
    : [];
  const modules = [
    module("for_you", ModuleKind.FOR_YOU, "Picked for you", forYou, size, (p) =>
      shopper.interest.get(p.category) > 0 ? `Because you like ${p.category}` : "Popular with shoppers",
    ),
    module(
      "because_you_viewed",
      ModuleKind.BECAUSE_YOU_VIEWED,
      last ? `Because you viewed ${last.title}` : "Because you viewed",
      similar,
      size,
      () => `Similar to ${last?.title}`,
    ),
    module(
      "recently_viewed",
      ModuleKind.RECENTLY_VIEWED,
      "Recently viewed",
      shopper.viewed.slice(0, n).map((id) => BY_ID.get(id)),
      size,
      () => "You looked at this",
    ),
    // Always down in the fake: the page must show a discreet placeholder, not fail.
    create(FeedModuleSchema, {
      moduleId: "trending",
      kind: ModuleKind.TRENDING_IN_YOUR_CATEGORIES,
      title: "Trending in your categories",
      state: ModuleState.UNAVAILABLE,
    }),
    module("popular", ModuleKind.POPULAR, "Popular right now", BY_POPULARITY.slice(0, n), size, () => "Popular this week"),
  ];
  return create(HomeFeedSchema, { layout, modules, generateTime: timestampNow(), variant: "fake" });
}

// ---------------------------------------------------------------------------------------------
// Identity, as the gateway does it (but the fake's tokens are not signed)

function base64url(text) {
  return Buffer.from(text).toString("base64url");
}

function devToken(user) {
  const header = base64url(JSON.stringify({ alg: "none", typ: "JWT" }));
  const payload = base64url(
    JSON.stringify({ sub: user, iss: "tailor-fake-gateway", exp: Math.floor(Date.now() / 1000) + 3600 }),
  );
  return `${header}.${payload}.fake`;
}

function identify(context) {
  const authorization = context.requestHeader.get("authorization");
  if (authorization) {
    const match = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]*)$/.exec(authorization);
    let claims;
    try {
      claims = match && JSON.parse(Buffer.from(match[2], "base64url").toString());
    } catch {
      claims = undefined;
    }
    if (!claims?.sub) throw new ConnectError("invalid token", Code.Unauthenticated);
    if (claims.exp * 1000 <= Date.now()) throw new ConnectError("token expired", Code.Unauthenticated);
    return `user:${claims.sub}`;
  }
  const device = context.requestHeader.get("x-device-id")?.trim();
  if (!device) {
    throw new ConnectError("sign in, or send an x-device-id header to browse anonymously", Code.Unauthenticated);
  }
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(device)) {
    throw new ConnectError("x-device-id must be 1-64 letters, digits, '-' or '_'", Code.Unauthenticated);
  }
  return `device:${device}`;
}

// ---------------------------------------------------------------------------------------------
// The service

function mobileService({ shoppers, seenEvents, dropStreams, updateDelayMs, log }) {
  const shopperOf = (who) => {
    let shopper = shoppers.get(who);
    if (!shopper) shoppers.set(who, (shopper = new Shopper()));
    return shopper;
  };

  return {
    getHomeFeed(request, context) {
      return { feed: buildFeed(shopperOf(identify(context)), request.deviceClass) };
    },

    async *streamHomeFeed(request, context) {
      const shopper = shopperOf(identify(context));
      // POST /fake/drop-streams ends this stream with UNAVAILABLE, like a gateway restart.
      const stop = new AbortController();
      const drop = () => stop.abort();
      dropStreams.add(drop);
      context.signal.addEventListener("abort", drop, { once: true });
      try {
        let seen = shopper.version;
        yield { feed: buildFeed(shopper, request.deviceClass) };
        while (await shopper.changedSince(seen, stop.signal)) {
          seen = shopper.version;
          yield { feed: buildFeed(shopper, request.deviceClass) };
        }
        if (!context.signal.aborted) throw new ConnectError("the fake gateway dropped the stream", Code.Unavailable);
      } finally {
        dropStreams.delete(drop);
      }
    },

    getProductPage(request, context) {
      identify(context);
      if (!request.itemId) throw new ConnectError("item_id: required", Code.InvalidArgument);
      const product = BY_ID.get(request.itemId);
      if (!product) throw new ConnectError(`product ${request.itemId} not found`, Code.NotFound);
      const size = request.deviceClass === DeviceClass.TABLET ? "large" : "medium";
      const similar = BY_POPULARITY.filter((p) => p.category === product.category && p.id !== product.id).slice(0, 6);
      const together = BY_POPULARITY.filter((p) => p.category === COMPLEMENT[product.category]).slice(0, 3);
      return {
        product: {
          itemId: product.id,
          title: product.title,
          description: `${product.title} by ${product.brand}. A fine example of ${product.category}, chosen by the fake gateway's buyers.`,
          category: product.category,
          brand: product.brand,
          tags: product.tags,
          price: product.price,
          imageUrl: imageUrl(product, "large"),
          available: product.available,
        },
        similar: module("similar", ModuleKind.UNSPECIFIED, "Similar items", similar, size, () => `Also in ${product.category}`),
        boughtTogether: module(
          "bought_together",
          ModuleKind.UNSPECIFIED,
          "Frequently bought together",
          together,
          size,
          () => "Often bought together",
        ),
      };
    },

    trackEvents(request, context) {
      const who = identify(context);
      if (request.events.length > 200) throw new ConnectError("events: at most 200", Code.InvalidArgument);
      const shopper = shopperOf(who);
      const rejected = [];
      let accepted = 0;
      let duplicates = 0;
      request.events.forEach((event, index) => {
        const reject = (field, reason) => rejected.push({ index, field, reason });
        if (!event.eventId) return reject("event_id", "required");
        if (seenEvents.has(event.eventId)) return void (duplicates += 1);
        if (event.kind === EventKind.UNSPECIFIED) return reject("kind", "required");
        if (!event.occurredAt) return reject("occurred_at", "required");
        if (!event.sessionId) return reject("session_id", "required");
        const product = BY_ID.get(event.itemId);
        if (event.kind !== EventKind.SEARCH && !product) return reject("item_id", `unknown item ${event.itemId}`);
        const needsQuantity = [EventKind.ADD_TO_CART, EventKind.REMOVE_FROM_CART, EventKind.PURCHASE];
        if (needsQuantity.includes(event.kind) && event.quantity < 1) return reject("quantity", "must be at least 1");
        if (event.kind === EventKind.PURCHASE && !event.unitPrice) return reject("unit_price", "required");
        seenEvents.add(event.eventId);
        accepted += 1;
        log(`event ${who} ${EventKind[event.kind]} ${event.itemId}`);
        if (product) {
          shopper.interest.set(product.category, (shopper.interest.get(product.category) ?? 0) + (WEIGHTS[event.kind] ?? 0));
        }
        if (event.kind === EventKind.VIEW) shopper.viewed = [event.itemId, ...shopper.viewed.filter((id) => id !== event.itemId)];
        if (event.kind === EventKind.PURCHASE) shopper.bought.add(event.itemId);
      });
      // Like the real pipeline, the feed changes a moment after the events are stored.
      if (accepted > 0) setTimeout(() => shopper.touch(), updateDelayMs);
      return { acceptedCount: accepted, duplicateCount: duplicates, rejected };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The HTTP server: gRPC-web plus the page, images and the development token

const CONTENT_TYPES = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

// The policy the page is meant to run under (and the gateway may send): no inline script or
// style, no eval, gRPC-web and images from the same origin (catalog images may be elsewhere).
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function send(res, status, type, body) {
  const headers = { "content-type": type, "cache-control": "no-cache", "x-content-type-options": "nosniff" };
  if (type.startsWith("text/html")) headers["content-security-policy"] = CSP;
  res.writeHead(status, headers);
  res.end(body);
}

export async function startFakeGateway({
  host = "127.0.0.1",
  port = 0,
  distDir = resolve(here, "../dist"),
  updateDelayMs = 300,
  production = false,
  verbose = false,
} = {}) {
  const log = verbose ? (line) => console.log(`[fake] ${line}`) : () => {};
  const state = { shoppers: new Map(), seenEvents: new Set(), dropStreams: new Set(), updateDelayMs, log };

  const fallback = async (req, res) => {
    const url = new URL(req.url ?? "/", "http://fake");
    log(`${req.method} ${url.pathname}`);
    if (req.method === "POST" && url.pathname === "/fake/drop-streams") {
      const dropped = state.dropStreams.size;
      for (const drop of [...state.dropStreams]) drop();
      return send(res, 200, "application/json", JSON.stringify({ dropped }));
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "method not allowed\n");
    if (url.pathname === "/dev/token") {
      if (production) return send(res, 404, "text/plain", "not found\n");
      // The gateway's rule for development user ids.
      const user = url.searchParams.get("user")?.trim() ?? "";
      if (!/^[A-Za-z0-9._@-]{1,64}$/.test(user)) {
        return send(res, 400, "text/plain; charset=utf-8", "user must be 1-64 letters, digits or -_.@");
      }
      return send(res, 200, "application/json", JSON.stringify({ token: devToken(user), user }));
    }
    const image = /^\/fake-img\/([\w-]+)\.svg$/.exec(url.pathname);
    if (image && BY_ID.has(image[1])) return send(res, 200, "image/svg+xml", imageSvg(BY_ID.get(image[1])));
    const file = url.pathname === "/" ? "index.html" : url.pathname.slice(1);
    if (Object.hasOwn(CONTENT_TYPES, file)) {
      try {
        // Read on every request, so a rebuild shows up on reload.
        return send(res, 200, CONTENT_TYPES[file], await readFile(resolve(distDir, file)));
      } catch (error) {
        return send(res, 500, "text/plain", `cannot read ${file} from ${distDir}: ${error.message}\n`);
      }
    }
    return send(res, 404, "text/plain", "not found\n");
  };

  const handler = connectNodeAdapter({
    // Only gRPC-web, like the gateway's browser-facing surface.
    grpcWeb: true,
    grpc: false,
    connect: false,
    routes: (router) => router.service(MobileService, mobileService(state)),
    fallback: (req, res) => {
      fallback(req, res).catch((error) => send(res, 500, "text/plain", `${error}\n`));
    },
    interceptors: [
      (next) => async (req) => {
        log(`rpc ${req.method.name}`);
        return next(req);
      },
    ],
  });

  const server = http.createServer(handler);
  await new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolvePromise);
  });
  const address = server.address();
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  return {
    url,
    close: () =>
      new Promise((resolvePromise) => {
        // Open StreamHomeFeed responses would keep close() waiting forever.
        server.closeAllConnections();
        server.close(() => resolvePromise());
      }),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "8090" },
      dist: { type: "string" },
      "update-delay": { type: "string", default: "300" },
      production: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
    },
  });
  const fake = await startFakeGateway({
    host: values.host,
    port: Number(values.port),
    distDir: values.dist ? resolve(values.dist) : undefined,
    updateDelayMs: Number(values["update-delay"]),
    production: values.production,
    verbose: values.verbose,
  });
  console.log(`fake gateway listening on ${fake.url}`);
  const stop = () => fake.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`fake gateway: ${error.message}`);
    process.exit(1);
  });
}
