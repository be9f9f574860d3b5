import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base.js";

// Three entries: the Connect transports; `./connection`, the HTTP/2
// connection alone, without Connect (for the pool); `./h2`, meshlite's own
// HTTP/2 (for the proxy's frame engine).
export default defineConfig(() => packageBuild(["src/index.ts", "src/connection.ts", "src/h2.ts"]));
