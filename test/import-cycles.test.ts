import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// Files import one another in one direction inside a package too: a bottom file that imports
// from the top one (even a type) makes the two one concept in two files.
const root = fileURLToPath(new URL("..", import.meta.url));
const sourceDirs = ["src", ...readdirSync(join(root, "packages")).map((d) => join("packages", d, "src"))];

/** The relative imports (values and types) of every .ts file under `dir`. */
function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const name of readdirSync(join(root, dir), { recursive: true }) as string[]) {
    if (!name.endsWith(".ts")) continue;
    const file = join(root, dir, name);
    const deps: string[] = [];
    for (const m of readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]*)"/g)) {
      deps.push(join(dirname(file), (m[1] as string).replace(/\.js$/, ".ts")));
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Every cycle found by a depth-first walk, as a list of files relative to the repository. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const onPath: string[] = [];
  const done = new Set<string>();
  const visit = (file: string) => {
    onPath.push(file);
    for (const dep of graph.get(file) ?? []) {
      const at = onPath.indexOf(dep);
      if (at >= 0) found.push([...onPath.slice(at), dep].map((f) => relative(root, f)));
      else if (!done.has(dep)) visit(dep);
    }
    onPath.pop();
    done.add(file);
  };
  for (const file of graph.keys()) if (!done.has(file)) visit(file);
  return found;
}

describe("imports inside a package", () => {
  it.each(sourceDirs)("%s has no import cycle", (dir) => {
    expect(cycles(importGraph(dir))).toEqual([]);
  });
});
