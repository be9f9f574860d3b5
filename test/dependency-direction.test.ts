import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The layers: core <- transport, resolvers, balancers <- pool <- channel (meshlite), proxy.
// A package may import only the meshlite packages listed for it.
const allowed: Record<string, string[]> = {
  "@meshlite/core": [],
  "@meshlite/transport": ["@meshlite/core"],
  "@meshlite/resolvers": ["@meshlite/core"],
  "@meshlite/resolver-k8s": ["@meshlite/core"],
  "@meshlite/balancers": ["@meshlite/core"],
  "@meshlite/pool": ["@meshlite/core", "@meshlite/transport", "@meshlite/resolvers", "@meshlite/balancers"],
  meshlite: ["@meshlite/core", "@meshlite/transport", "@meshlite/resolvers", "@meshlite/balancers", "@meshlite/pool"],
  "@meshlite/proxy": ["@meshlite/core", "@meshlite/transport", "@meshlite/balancers", "@meshlite/pool"],
  // Server side: load reports written by servers.
  "@meshlite/orca": ["@meshlite/core"],
  // Instruments channels and the proxy through core's CallObserver (and reads pool snapshots' types).
  "@meshlite/opentelemetry": ["@meshlite/core", "@meshlite/pool"],
};

const root = fileURLToPath(new URL("..", import.meta.url));
const dirs: Record<string, string> = {
  meshlite: root,
  ...Object.fromEntries(
    readdirSync(join(root, "packages")).map((d) => [
      JSON.parse(readFileSync(join(root, "packages", d, "package.json"), "utf8")).name as string,
      join(root, "packages", d),
    ]),
  ),
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.parentPath.includes("/gen"))
    .map((e) => join(e.parentPath, e.name));
}

/** The packages a package's sources import: bare specifiers, scope and name only. */
function importsOf(name: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sources(join(dirs[name] as string, "src"))) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"([^".][^"]*)"/g)) {
      const spec = m[1] as string;
      const pkg = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : (spec.split("/")[0] as string);
      if (!found.has(pkg)) found.set(pkg, file.slice(root.length));
    }
  }
  return found;
}

const meshlitePackages = Object.keys(allowed);

/** Every package a module loads at run time, following its value imports through the repository's sources. */
function runtimeClosure(entry: string): Set<string> {
  const external = new Set<string>();
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^"]+)"|^import\s+"([^"]+)"/gm)) {
      const spec = (m[1] ?? m[2]) as string;
      if (spec.startsWith(".")) queue.push(join(file, "..", spec.replace(/\.js$/, ".ts")));
      else if (spec.startsWith("@meshlite/")) {
        const [, pkg, sub] = spec.split("/");
        queue.push(join(root, "packages", pkg as string, "src", `${sub ?? "index"}.ts`));
      } else if (!spec.startsWith("node:")) external.add(spec);
    }
  }
  return external;
}

describe("dependency direction", () => {
  it("knows every package", () => {
    expect(Object.keys(dirs).sort()).toEqual([...meshlitePackages].sort());
  });

  it.each(meshlitePackages)("%s imports only the meshlite packages below it, and declares them", (name) => {
    const imported = [...importsOf(name)].filter(([pkg]) => meshlitePackages.includes(pkg));
    for (const [pkg, file] of imported) {
      expect(allowed[name], `${file} imports ${pkg}`).toContain(pkg);
    }
    const manifest = JSON.parse(readFileSync(join(dirs[name] as string, "package.json"), "utf8"));
    const declared = Object.keys(manifest.dependencies ?? {});
    for (const [pkg, file] of imported) expect(declared, `${file} imports undeclared ${pkg}`).toContain(pkg);
    for (const pkg of declared.filter((p) => meshlitePackages.includes(p))) expect(allowed[name]).toContain(pkg);
  });

  it("has no cycles", () => {
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string, path: string[]) => {
      if (done.has(name)) return;
      expect(visiting.has(name), `cycle: ${[...path, name].join(" -> ")}`).toBe(false);
      visiting.add(name);
      for (const [pkg] of importsOf(name)) if (meshlitePackages.includes(pkg)) visit(pkg, [...path, name]);
      visiting.delete(name);
      done.add(name);
    };
    for (const name of meshlitePackages) visit(name, []);
  });

  it("keeps the proxy off the channel, and the pool off Connect's message layer", () => {
    expect([...importsOf("@meshlite/proxy").keys()]).not.toContain("meshlite");
    const pool = [...importsOf("@meshlite/pool").keys()];
    expect(pool.filter((p) => p.startsWith("@connectrpc") || p.startsWith("@bufbuild"))).toEqual([]);
  });

  it("lets the pool load no Connect code at all, not even through the packages it builds on", () => {
    const loaded = [...runtimeClosure(join(root, "packages/pool/src/index.ts"))];
    expect(loaded.filter((p) => p.startsWith("@connectrpc") || p.startsWith("@bufbuild"))).toEqual([]);
    // The check follows imports: the channel, which does load Connect, is caught.
    expect([...runtimeClosure(join(root, "src/index.ts"))]).toContain("@connectrpc/connect");
  });
});
