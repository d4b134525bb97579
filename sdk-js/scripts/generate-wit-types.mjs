// Generates the TypeScript declarations of the WIT contract (wit/*.wit)
// with jco's type generator, into wit-types/ (beside src/ and dist/, so that
// both reach it at ../wit-types), or into the directory given as argument.
//
// jco's `guest-types` command reads the WIT through a WASI filesystem shim
// that fails on any path here ("failed to read path for WIT ... os error
// 44", jco 1.35); its generator takes the WIT source itself just as well,
// so this passes the text.
import { readFileSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { $init, generateTypes } from "@bytecodealliance/jco-transpile/component";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outs = [process.argv[2] ?? join(root, "wit-types")];
const source = readFileSync(join(root, "wit/projection.wit"), "utf8");

await $init;
const files = generateTypes("projection", {
  wit: { tag: "source", val: source },
  world: "projection",
  guest: true,
  tlaCompat: false,
  features: { tag: "all" },
});
const header = "// Generated from wit/projection.wit by scripts/generate-wit-types.mjs: do not edit.\n";
for (const out of outs) {
  rmSync(out, { recursive: true, force: true });
  for (const [name, body] of files) {
    const path = join(out, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, header + new TextDecoder().decode(body));
  }
}
