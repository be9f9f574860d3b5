import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base.js";

// Two entries: the Connect transports, and `./connection` (the HTTP/2
// connection alone, without Connect) for the pool.
export default defineConfig(() => packageBuild(["src/index.ts", "src/connection.ts"]));
