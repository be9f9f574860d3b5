import type { promises as dns } from "node:dns";

/** What a TXT lookup of `_grpc_config.<host>` found. */
export interface ServiceConfigLookup {
  /** The JSON after `grpc_config=`; undefined when the name has no such record. */
  text?: string;
  /** The query failed (not: the name has no record); the last config stays. */
  error?: Error;
}

const prefix = "grpc_config=";

/** gRFC A2: the service config published as a TXT record of `_grpc_config.<host>`. */
export async function lookupServiceConfig(resolver: dns.Resolver, host: string): Promise<ServiceConfigLookup> {
  try {
    const records = await resolver.resolveTxt(`_grpc_config.${host}`);
    // A record longer than 255 bytes comes in chunks, joined without separator.
    const text = records.map((chunks) => chunks.join("")).find((r) => r.startsWith(prefix));
    return text === undefined ? {} : { text: text.slice(prefix.length) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTFOUND" || code === "ENODATA") return {};
    return { error: error as Error };
  }
}
