import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";

// Packs every package as npm would publish it (the root `meshlite` and every
// packages/* directory, so a new package is covered without editing this file),
// checks what each tarball holds, installs the tarballs into a fresh project,
// loads every entry point from ESM and CommonJS and makes balanced calls.
const root = fileURLToPath(new URL("..", import.meta.url));
const packages = readdirSync(join(root, "packages")).filter((dir) =>
  existsSync(join(root, "packages", dir, "package.json")),
);
type Manifest = {
  name: string;
  license?: string;
  repository?: { url?: string; directory?: string };
  keywords?: string[];
  exports?: Record<string, unknown>;
  bin?: Record<string, string>;
  sideEffects?: unknown;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};
const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
const rootManifest = readManifest(root);
let project: string;
let backends: EchoBackend[];
/** Package name -> the files in its tarball (paths without the leading "package/"). */
const contents = new Map<string, string[]>();
/** Package name -> the package.json inside its tarball. */
const packed = new Map<string, Manifest>();
/** Package name -> the LICENSE inside its tarball. */
const licenses = new Map<string, string>();

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), "meshlite-pack-"));
  const tarballs = join(project, "tarballs");
  run("pnpm", ["build"], root);
  for (const dir of [...packages.map((p) => join(root, "packages", p)), root]) {
    const before = new Set(existsSync(tarballs) ? readdirSync(tarballs) : []);
    run("pnpm", ["pack", "--pack-destination", tarballs], dir);
    const tarball = readdirSync(tarballs).find((file) => !before.has(file));
    if (!tarball) throw new Error(`pnpm pack wrote no tarball for ${dir}`);
    const name = readManifest(dir).name;
    const path = join(tarballs, tarball);
    contents.set(
      name,
      run("tar", ["-tzf", path], project)
        .split("\n")
        .filter((line) => line !== "" && !line.endsWith("/"))
        .map((line) => line.replace(/^package\//, "")),
    );
    packed.set(name, JSON.parse(run("tar", ["-xzOf", path, "package/package.json"], project)));
    if (contents.get(name)?.includes("LICENSE"))
      licenses.set(name, run("tar", ["-xzOf", path, "package/LICENSE"], project));
  }
  // pnpm names the tarballs meshlite-0.1.0.tgz and meshlite-core-0.1.0.tgz.
  const byName = Object.fromEntries(
    readdirSync(tarballs).map((file) => {
      const scoped = /^meshlite-([a-z0-9-]+?)-\d+\.\d+\.\d+\.tgz$/.exec(file)?.[1];
      return [scoped ? `@meshlite/${scoped}` : "meshlite", `file:${join(tarballs, file)}`];
    }),
  );
  const dev = rootManifest.devDependencies ?? {};
  // Every peer dependency at the version the repository tests against: the
  // package's own devDependency, else the root's, else the peer range itself.
  const peers: Record<string, string> = {};
  for (const dir of [root, ...packages.map((p) => join(root, "packages", p))]) {
    const manifest = readManifest(dir);
    for (const [peer, range] of Object.entries(manifest.peerDependencies ?? {})) {
      peers[peer] ??= manifest.devDependencies?.[peer] ?? dev[peer] ?? range;
    }
  }
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({
      name: "meshlite-consumer",
      private: true,
      dependencies: {
        ...peers,
        ...byName,
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
  // Every entry point of every package (each key of its `exports`), loaded both ways.
  const entries = [...packed.values()].flatMap((manifest) =>
    Object.keys(manifest.exports ?? { ".": "" }).map((key) => manifest.name + key.slice(1)),
  );
  writeFileSync(
    join(project, "entries.mjs"),
    `const out = {};
for (const entry of ${JSON.stringify(entries)}) out[entry] = Object.keys(await import(entry)).length;
console.log(JSON.stringify(out));
`,
  );
  writeFileSync(
    join(project, "entries.cjs"),
    `const out = {};
for (const entry of ${JSON.stringify(entries)}) out[entry] = Object.keys(require(entry)).length;
console.log(JSON.stringify(out));
`,
  );
  backends = await Promise.all([81, 82].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
  // Builds, packs and installs nine packages: minutes on a busy 2-core machine.
}, 600_000);

afterAll(async () => {
  await Promise.all((backends ?? []).map((b) => b.close()));
  if (project) rmSync(project, { recursive: true, force: true });
});

function node(args: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    execFile(process.execPath, args, { cwd: project, timeout: 30_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

describe("every package's tarball", () => {
  const names = [rootManifest.name, ...packages.map((p) => readManifest(join(root, "packages", p)).name)];

  it("covers the root package and every packages/* directory", () => {
    expect([...contents.keys()].sort()).toEqual(names.sort());
  });

  it.each(names)("%s holds only dist, README.md, LICENSE, package.json (and its bin)", (name) => {
    const manifest = packed.get(name) as Manifest;
    const bins = Object.values(manifest.bin ?? {}).map((path) => path.replace(/^\.\//, ""));
    const files = contents.get(name) ?? [];
    const unexpected = files.filter(
      (file) =>
        !["package.json", "README.md", "LICENSE"].includes(file) && !file.startsWith("dist/") && !bins.includes(file),
    );
    expect(unexpected).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(["package.json", "README.md", "LICENSE", ...bins]));
    // The license the packages declare (Apache-2.0), in full.
    expect(licenses.get(name)).toBe(readFileSync(join(root, "LICENSE"), "utf8"));
    expect(licenses.get(name)).toContain("Apache License\n                           Version 2.0, January 2004");
    // Every file `exports` points at is in the tarball (a build that forgot one fails here).
    const targets = JSON.stringify(manifest.exports ?? {}).match(/\.\/dist\/[^"]+/g) ?? [];
    expect(targets.length).toBeGreaterThan(0);
    expect(files).toEqual(expect.arrayContaining(targets.map((t) => t.slice(2))));
  });

  it.each(names)("%s has the metadata a registry page shows", (name) => {
    const manifest = packed.get(name) as Manifest;
    const directory = name === rootManifest.name ? undefined : `packages/${name.replace("@meshlite/", "")}`;
    expect(manifest.license).toBe(rootManifest.license);
    expect(manifest.repository).toEqual({
      type: "git",
      url: "git+https://github.com/meshlite/meshlite.git",
      ...(directory ? { directory } : {}),
    });
    expect(manifest.keywords?.length).toBeGreaterThan(0);
    expect(manifest.sideEffects).toBeDefined();
    expect(manifest.engines).toEqual(rootManifest.engines);
    // pnpm pack turns workspace: ranges into versions; a leftover one would not install.
    expect(JSON.stringify(manifest.dependencies ?? {})).not.toContain("workspace:");
    if (directory) expect(existsSync(join(root, directory, "CHANGELOG.md"))).toBe(true);
  });
});

describe("the published packages", () => {
  it.each(["entries.mjs", "entries.cjs"])("load every entry point from %s", async (script) => {
    const loaded: Record<string, number> = JSON.parse(await node([script]));
    const empty = Object.entries(loaded).filter(([, count]) => count === 0);
    expect(empty).toEqual([]);
    expect(Object.keys(loaded)).toEqual(expect.arrayContaining([...packed.keys()]));
  });

  it("installs the proxy's command", async () => {
    const help = await node([join(project, "node_modules/@meshlite/proxy/bin/meshlite-proxy.mjs"), "--help"]);
    expect(help).toContain("--help");
  });

  it.each(["call.mjs", "call.cjs"])("make a balanced call from %s", async (script) => {
    const target = `static:///${backends.map((b) => b.address).join(",")}`;
    const output = await node([script, target]);
    expect(JSON.parse(output)).toEqual({ servers: backends.map((b) => b.address).sort(), k8sRegistered: true });
  });
});
