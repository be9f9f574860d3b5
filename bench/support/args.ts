/**
 * Reads `--name value` / `--name=value` numeric options and `--flag` booleans
 * from argv (kebab-case names map to camelCase keys), with defaults; exits
 * with a usage message on anything else.
 */
export function parseArgs<T extends { [K in keyof T]: number | boolean }>(defaults: T, usage: string): T {
  const result: Record<string, number | boolean> = { ...defaults };
  const known: Record<string, number | boolean> = defaults;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const name = match?.[1]?.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!match || name === undefined || !(name in known)) {
      fail(`unknown argument ${JSON.stringify(arg)}`);
    }
    if (typeof known[name] === "boolean") {
      if (match[2] !== undefined) fail(`--${match[1]} is a flag and takes no value`);
      result[name] = true;
      continue;
    }
    const raw = match[2] ?? argv[++i];
    const value = Number(raw);
    if (raw === undefined || !Number.isFinite(value) || value <= 0) {
      fail(`--${match[1]} needs a positive number, got ${JSON.stringify(raw)}`);
    }
    result[name] = value;
  }
  return result as T;

  function fail(message: string): never {
    console.error(`${message}\nusage: ${usage}`);
    process.exit(2);
  }
}
