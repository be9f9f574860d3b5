// dns: resolver
export type { DnsAttempt, DnsErrorKind } from "./dns-errors.js";
export { DnsResolutionError } from "./dns-errors.js";
export { createDnsResolver } from "./dns-resolver.js";
export type { DnsFamily, DnsResolverOptions } from "./dns-resolver-options.js";
export { defaultDnsResolverOptions } from "./dns-resolver-options.js";
export type { ResolvConf } from "./resolv-conf.js";
export { parseResolvConf, searchNames } from "./resolv-conf.js";
export { createStaticResolver } from "./static-resolver.js";
