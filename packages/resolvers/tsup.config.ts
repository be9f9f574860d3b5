import { defineConfig } from "tsup";

const common = {
  entry: ["src/index.ts"],
  dts: true,
  sourcemap: true,
  target: "node20",
} as const;

export default defineConfig([
  { ...common, format: ["esm"], clean: true },
  // p-retry is ESM-only: a CJS require() of it does not give its default
  // export, so the CJS build carries its own copy (MIT, a few hundred lines).
  { ...common, format: ["cjs"], noExternal: ["p-retry", "is-network-error"] },
]);
