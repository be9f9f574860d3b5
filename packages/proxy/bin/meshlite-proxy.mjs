#!/usr/bin/env node
// Runs the built CLI (dist/cli.js) when the package is built or installed;
// in a source checkout without a build, runs src/cli.ts through tsx with the
// repository's tsconfig paths, so `pnpm exec meshlite-proxy` works right after
// `pnpm install`. MESHLITE_PROXY_FROM_SOURCE=1 prefers the source (tests use
// it, so a stale build does not hide changes).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const built = join(here, "..", "dist", "cli.js");
const source = join(here, "..", "src", "cli.ts");

let cli;
const fromSource = process.env.MESHLITE_PROXY_FROM_SOURCE === "1" && existsSync(source);
if (existsSync(built) && !fromSource) {
  cli = await import(pathToFileURL(built).href);
} else if (existsSync(source)) {
  let api;
  try {
    api = await import("tsx/esm/api");
  } catch {
    process.stderr.write("meshlite-proxy: not built and tsx is not installed; run `pnpm build` or `pnpm install`\n");
    process.exit(1);
  }
  // The repository's tsconfig maps meshlite and @meshlite/* to their sources.
  api.register({ tsconfig: join(here, "..", "..", "..", "tsconfig.json") });
  cli = await import(pathToFileURL(source).href);
} else {
  process.stderr.write("meshlite-proxy: dist/cli.js is missing; reinstall @meshlite/proxy\n");
  process.exit(1);
}
await cli.main(process.argv.slice(2));
