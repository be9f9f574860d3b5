import { defineConfig } from "tsup";
import { packageBuild } from "../../tsup.base.js";

// The CLI is a second entry: bin/meshlite-proxy.mjs loads dist/cli.js.
export default defineConfig(() => packageBuild(["src/index.ts", "src/cli.ts"]));
