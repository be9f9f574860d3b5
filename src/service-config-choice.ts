import { createConfigReader } from "./service-config-values.js";

/** Who the client is, for choosing among the choices of a DNS service config (gRFC A2). */
export interface ClientIdentity {
  /** 0 to 99, drawn once per channel: a choice with `percentage` N applies when it is below N. */
  readonly percentile: number;
  readonly hostname: string;
}

/** The `clientLanguage` values that mean this client. */
const languages = ["node", "javascript", "nodejs", "js"];
const choiceFields = ["clientLanguage", "percentage", "clientHostname", "serviceConfig"];

/**
 * Picks the service config of a `grpc_config=` TXT record: a JSON list of
 * choices `{ clientLanguage, percentage, clientHostname, serviceConfig }`,
 * the first whose conditions all hold wins (its config and JSON path);
 * undefined when none does.
 * Throws a ServiceConfigError naming the path (`grpc_config[1].percentage: ...`).
 */
export function chooseServiceConfig(
  text: string,
  client: ClientIdentity,
  prefix: string,
): { config: Record<string, unknown>; path: string } | undefined {
  const read = createConfigReader(prefix);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    read.fail("grpc_config", `is not valid JSON (${(error as Error).message})`);
  }
  const choices = read.array(value, "grpc_config");
  for (const [i, item] of choices.entries()) {
    const at = `grpc_config[${i}]`;
    const choice = read.object(item, at);
    for (const key of Object.keys(choice)) {
      // A2: a choice with a field it does not define is an error.
      if (!choiceFields.includes(key))
        read.fail(`${at}.${key}`, `is not a field of a choice (${choiceFields.join(", ")})`);
    }
    if (choice.serviceConfig === undefined) read.fail(`${at}.serviceConfig`, "is required, got nothing");
    const strings = (field: string) =>
      read.array(choice[field], `${at}.${field}`).map((v, j) => read.string(v, `${at}.${field}[${j}]`));
    if (choice.clientLanguage !== undefined) {
      const list = strings("clientLanguage").map((l) => l.toLowerCase());
      if (!list.some((l) => languages.includes(l))) continue;
    }
    if (choice.percentage !== undefined) {
      const p = read.number(choice.percentage, `${at}.percentage`, 0, 100, true);
      if (client.percentile >= p) continue;
    }
    if (choice.clientHostname !== undefined && !strings("clientHostname").includes(client.hostname)) continue;
    return { config: read.object(choice.serviceConfig, `${at}.serviceConfig`), path: `${at}.serviceConfig` };
  }
  return undefined;
}
