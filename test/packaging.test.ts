import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";

// Packs every package as npm would publish it, installs the tarballs into a
// fresh project, and makes balanced calls from ESM and CommonJS.
const root = fileURLToPath(new URL("..", import.meta.url));
const packages = ["core", "transport", "resolvers", "balancers", "pool", "resolver-k8s", "orca"];
let project: string;
let backends: EchoBackend[];

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), "meshlite-pack-"));
  const tarballs = join(project, "tarballs");
  run("pnpm", ["build"], root);
  for (const dir of [...packages.map((p) => join(root, "packages", p)), root]) {
    run("pnpm", ["pack", "--pack-destination", tarballs], dir);
  }
  // pnpm names the tarballs meshlite-0.1.0.tgz and meshlite-core-0.1.0.tgz.
  const byName = Object.fromEntries(
    readdirSync(tarballs).map((file) => {
      const scoped = /^meshlite-([a-z0-9-]+?)-\d+\.\d+\.\d+\.tgz$/.exec(file)?.[1];
      return [scoped ? `@meshlite/${scoped}` : "meshlite", `file:${join(tarballs, file)}`];
    }),
  );
  const rootPackage = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const dev = rootPackage.devDependencies as Record<string, string>;
  const k8sPackage = JSON.parse(readFileSync(join(root, "packages/resolver-k8s/package.json"), "utf8"));
  const k8sDev = k8sPackage.devDependencies as Record<string, string>;
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({
      name: "meshlite-consumer",
      private: true,
      dependencies: {
        ...byName,
        "@connectrpc/connect": dev["@connectrpc/connect"],
        "@connectrpc/connect-node": dev["@connectrpc/connect-node"],
        "@bufbuild/protobuf": dev["@bufbuild/protobuf"],
        "@kubernetes/client-node": k8sDev["@kubernetes/client-node"],
      },
      // The tarballs depend on each other by version; point those at the tarballs too.
      overrides: Object.fromEntries(Object.entries(byName).filter(([name]) => name !== "meshlite")),
    }),
  );
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], project);

  // The echo service's descriptor, as protoc-gen-es embeds it.
  const generated = readFileSync(join(root, "gen/meshlite/echo/v1/echo_pb.ts"), "utf8");
  const descriptor = generated.match(/fileDesc\("([^"]+)"\)/)?.[1];
  const body = (imports: string) => `${imports}
const file = fileDesc("${descriptor}");
const EchoService = serviceDesc(file, 0);
const channel = createChannel({ target: process.argv[2], balancer: "round-robin" });
// The k8s resolver registers its scheme on import: a k8s target now gets past the registry.
let k8sRegistered = false;
try { createChannel({ target: "k8s:///orders.shop:grpc", resolverOptions: { kubeconfigPath: "/nonexistent" } }); }
catch (e) { k8sRegistered = !String(e).includes("no resolver for"); }
const client = createClient(EchoService, channel);
const servers = new Set();
(async () => {
  for (let i = 0; i < 4; i++) servers.add((await client.echo({ message: "hi" })).server);
  // An idempotent method runs under a retry policy (p-retry, ESM-only: the CJS build must carry it).
  servers.add((await client.echoIdempotent({ message: "hi" })).server);
  console.log(JSON.stringify({ servers: [...servers].sort(), k8sRegistered }));
  await channel.close();
})();
`;
  writeFileSync(
    join(project, "call.mjs"),
    body(`import { createChannel } from "meshlite";
import { createClient } from "@connectrpc/connect";
import { fileDesc, serviceDesc } from "@bufbuild/protobuf/codegenv2";
import "@meshlite/resolver-k8s";`),
  );
  writeFileSync(
    join(project, "call.cjs"),
    body(`const { createChannel } = require("meshlite");
const { createClient } = require("@connectrpc/connect");
const { fileDesc, serviceDesc } = require("@bufbuild/protobuf/codegenv2");
require("@meshlite/resolver-k8s");`),
  );
  backends = await Promise.all([81, 82].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
}, 300_000);

afterAll(async () => {
  await Promise.all((backends ?? []).map((b) => b.close()));
  if (project) rmSync(project, { recursive: true, force: true });
});

describe("the published packages", () => {
  it.each(["call.mjs", "call.cjs"])("make a balanced call from %s", async (script) => {
    const target = `static:///${backends.map((b) => b.address).join(",")}`;
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [script, target], { cwd: project, timeout: 30_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    expect(JSON.parse(output)).toEqual({ servers: backends.map((b) => b.address).sort(), k8sRegistered: true });
  });
});
