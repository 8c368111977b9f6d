// Builds the storefront into OUT_DIR (default "dist"): index.html, app.js, app.css — the fixed
// file list the gateway embeds. The output depends only on the sources and the pinned esbuild,
// so check.sh can rebuild and compare byte for byte.
//
//   node build.mjs [OUT_DIR]

import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? "dist");

const common = {
  absWorkingDir: here,
  bundle: true,
  minify: true,
  write: false,
  charset: "utf8",
  logLevel: "warning",
  // Browsers of the last few years (Safari 14, Chrome 80+); protobuf-es needs BigInt for int64.
  target: "es2020",
};

async function bundle(options) {
  const result = await esbuild.build({ ...common, ...options });
  return result.outputFiles[0].text;
}

const js = await bundle({
  entryPoints: ["src/main.ts"],
  outfile: "app.js",
  format: "iife",
  platform: "browser",
});
const css = await bundle({ entryPoints: ["src/app.css"], outfile: "app.css" });

// Content hashes in the asset URLs, so a browser never runs a new page with an old bundle.
const short = (text) => createHash("sha256").update(text).digest("hex").slice(0, 12);
const html = (await readFile(resolve(here, "src/index.html"), "utf8"))
  .replace("__APP_JS_HASH__", short(js))
  .replace("__APP_CSS_HASH__", short(css));

await mkdir(out, { recursive: true });
await Promise.all([
  writeFile(resolve(out, "index.html"), html),
  writeFile(resolve(out, "app.js"), js),
  writeFile(resolve(out, "app.css"), css),
]);
console.log(`built ${out}: index.html, app.js (${js.length} bytes), app.css (${css.length} bytes)`);
