#!/usr/bin/env node
// The page alone, fast: starts the fake gateway in-process on a free port, then runs the
// browser test (storefront.mjs) and the rendering checks (page-checks.mjs) against it. Extra
// arguments go to storefront.mjs, e.g. `--screenshot ../../../docs/img/storefront.png`.
//
//   node tests/with-fake.mjs [storefront.mjs options]

import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startFakeGateway } from "./fake-gateway.mjs";

const here = dirname(fileURLToPath(import.meta.url));

function runScript(script, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, script), ...args], { stdio: "inherit" });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const fake = await startFakeGateway({ port: 0 });
console.log(`fake gateway: ${fake.url}`);
let status = 1;
try {
  status = await runScript("storefront.mjs", [fake.url, ...process.argv.slice(2)]);
  if (status === 0) status = await runScript("page-checks.mjs", [fake.url]);
} finally {
  await fake.close();
}
process.exit(status);
