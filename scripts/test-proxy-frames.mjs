// Runs the proxy's test files on the frame engine (issue 19):
// `pnpm test:proxy-frames`, or `pnpm test:proxy-frames test/proxy.test.ts ...`
// for the files given. The files run one at a time, as on a shared machine.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const given = process.argv.slice(2);
const files =
  given.length > 0
    ? given
    : readdirSync("test")
        .filter((f) => /^proxy.*\.test\.ts$/.test(f) || f === "interop-proxy.test.ts")
        .sort()
        .map((f) => `test/${f}`);
const failed = [];
for (const file of files) {
  console.log(`\n== ${file} (engine: frames)`);
  const run = spawnSync("pnpm", ["exec", "vitest", "run", file], {
    stdio: "inherit",
    env: { ...process.env, MESHLITE_PROXY_ENGINE: "frames" },
  });
  if (run.status !== 0) failed.push(file);
}
if (failed.length > 0) {
  console.error(`\nfailed on the frame engine: ${failed.join(", ")}`);
  process.exit(1);
}
console.log(`\n${files.length} file${files.length === 1 ? "" : "s"} passed on the frame engine`);
