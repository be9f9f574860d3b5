import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      "@meshlite/core": src("./packages/core/src/index.ts"),
      // Before "@meshlite/transport": the first alias that matches wins.
      "@meshlite/transport/connection": src("./packages/transport/src/connection.ts"),
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
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    fileParallelism: true,
    maxWorkers: 2,
  },
});
