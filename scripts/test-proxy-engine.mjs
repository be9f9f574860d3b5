// Runs the proxy's test files on one engine (issue 19): `node
// scripts/test-proxy-engine.mjs streams` (`pnpm test:proxy-streams`: the
// default suite runs them on the default engine, frames), or with the files
// given after the engine. The files run one at a time, as on a shared machine.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const [engine, ...given] = process.argv.slice(2);
if (engine !== "streams" && engine !== "frames") {
  console.error(`usage: test-proxy-engine.mjs streams|frames [test files...]; got engine ${JSON.stringify(engine)}`);
  process.exit(2);
}
const files =
  given.length > 0
    ? given
    : readdirSync("test")
        .filter((f) => /^proxy.*\.test\.ts$/.test(f) || f === "interop-proxy.test.ts")
        .sort()
        .map((f) => `test/${f}`);
const failed = [];
for (const file of files) {
  console.log(`\n== ${file} (engine: ${engine})`);
  const run = spawnSync("pnpm", ["exec", "vitest", "run", file], {
    stdio: "inherit",
    env: { ...process.env, MESHLITE_PROXY_ENGINE: engine },
  });
  if (run.status !== 0) failed.push(file);
}
if (failed.length > 0) {
  console.error(`\nfailed on the ${engine} engine: ${failed.join(", ")}`);
  process.exit(1);
}
console.log(`\n${files.length} file${files.length === 1 ? "" : "s"} passed on the ${engine} engine`);
