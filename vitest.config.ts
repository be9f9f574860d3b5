import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** Test files that run by themselves, after the others (see the "alone" project). */
const alone = ["test/packaging.test.ts", "test/proxy-workers.test.ts"];

export default defineConfig({
  resolve: {
    alias: {
      "@meshlite/core": src("./packages/core/src/index.ts"),
      // Before "@meshlite/transport": the first alias that matches wins.
      "@meshlite/transport/connection": src("./packages/transport/src/connection.ts"),
      "@meshlite/transport/h2": src("./packages/transport/src/h2.ts"),
      "@meshlite/transport": src("./packages/transport/src/index.ts"),
      "@meshlite/resolvers": src("./packages/resolvers/src/index.ts"),
      "@meshlite/resolver-k8s": src("./packages/resolver-k8s/src/index.ts"),
      "@meshlite/balancers": src("./packages/balancers/src/index.ts"),
      "@meshlite/pool": src("./packages/pool/src/index.ts"),
      "@meshlite/proxy": src("./packages/proxy/src/index.ts"),
      "@meshlite/orca": src("./packages/orca/src/index.ts"),
      "@meshlite/opentelemetry": src("./packages/opentelemetry/src/index.ts"),
      meshlite: src("./src/index.ts"),
    },
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "suite",
          sequence: { groupOrder: 0 },
          include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
          exclude: [...alone],
          fileParallelism: true,
          maxWorkers: 2,
        },
      },
      {
        // After the rest, one at a time: these build, pack, install and fork
        // whole processes (more than a busy core's worth of CPU for minutes),
        // and `pnpm build` rewrites the dist/ other files may load.
        extends: true,
        test: {
          name: "alone",
          include: [...alone],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
