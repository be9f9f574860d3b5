import { rmSync } from "node:fs";
import type { Options } from "tsup";

/**
 * How every meshlite package is built: ESM and CommonJS with type
 * declarations, for Node 20. p-retry is ESM-only: a CommonJS require() of it
 * does not give its default export on every Node 20 release, so the CommonJS
 * build carries its own copy (MIT, a few hundred lines).
 *
 * `dist` is emptied once, here, before both builds start: tsup runs the two
 * configs in parallel, so `clean: true` on one of them could delete what the
 * other has just written.
 */
export function packageBuild(entry: string[] = ["src/index.ts"]): Options[] {
  rmSync("dist", { recursive: true, force: true });
  const common: Options = { entry, dts: true, sourcemap: true, target: "node20" };
  return [
    { ...common, format: ["esm"] },
    { ...common, format: ["cjs"], noExternal: ["p-retry", "is-network-error"] },
  ];
}
