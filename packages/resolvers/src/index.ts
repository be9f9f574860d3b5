export { createStaticResolver } from "./static-resolver.js";
