import type { Options } from "tsup";

const common: Options = {
  entry: ["src/index.ts"],
  dts: true,
  sourcemap: true,
  target: "node20",
};

/**
 * How every meshlite package is built: ESM and CommonJS with type
 * declarations, for Node 20. p-retry is ESM-only: a CommonJS require() of it
 * does not give its default export on every Node 20 release, so the CommonJS
 * build carries its own copy (MIT, a few hundred lines).
 */
export const packageBuild: Options[] = [
  { ...common, format: ["esm"], clean: true },
  { ...common, format: ["cjs"], noExternal: ["p-retry", "is-network-error"] },
];
