#!/usr/bin/env node
// projector-componentize ENTRY.(js|ts) -o OUT.wasm
//
// Builds a projection component for the `projector:projection` world:
// 1. esbuild bundles ENTRY and everything it imports (this SDK included)
//    into one ES module, leaving only the world's own imports
//    (`projector:projection/...`) to the component (componentize-js resolves
//    relative imports but not packages); TypeScript is stripped, not checked
//    (run `tsc --noEmit` for that, as `npm run build` does);
// 2. componentize-js compiles the bundle, with every WASI feature disabled
//    (`stdio random clocks http fetch-event`), so the component imports
//    nothing but the world's `log`: no clock, randomness, filesystem or
//    network, which the runtime would refuse anyway.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const usage = "usage: projector-componentize ENTRY.(js|ts) -o OUT.wasm [--keep-bundle PATH]";
let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      "keep-bundle": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (err) {
  console.error(`projector-componentize: ${err.message}\n${usage}`);
  process.exit(2);
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(usage);
  process.exit(0);
}
if (positionals.length !== 1 || !values.out) {
  console.error(`projector-componentize: expected one entry module and -o OUT.wasm\n${usage}`);
  process.exit(2);
}

const [{ build }, { componentize }] = await Promise.all([
  import("esbuild"),
  import("@bytecodealliance/componentize-js"),
]);
const witPath = join(dirname(fileURLToPath(import.meta.url)), "..", "wit");
const work = mkdtempSync(join(tmpdir(), "projector-componentize-"));
try {
  const bundle = values["keep-bundle"] ? resolve(values["keep-bundle"]) : join(work, "bundle.js");
  const started = Date.now();
  await build({
    entryPoints: [positionals[0]],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    external: ["projector:projection/*"],
    outfile: bundle,
    logLevel: "warning",
  });
  const { component } = await componentize({
    sourcePath: bundle,
    witPath,
    worldName: "projection",
    disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"],
  });
  mkdirSync(dirname(resolve(values.out)), { recursive: true });
  writeFileSync(values.out, component);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.error(`projector-componentize: wrote ${values.out} (${(component.length / 1e6).toFixed(1)} MB) in ${seconds} s`);
} catch (err) {
  console.error(`projector-componentize: ${err.message ?? err}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
