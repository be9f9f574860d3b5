import type { Logger } from "@meshlite/core";

/** Log levels, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const levels: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Options of createJsonLogger. */
export interface JsonLoggerOptions {
  /** Lowest level written. Default "info". */
  level?: LogLevel;
  /** Where lines go. Default process.stderr. */
  write?: (line: string) => void;
  /** Fields on every line, after time, level and msg (e.g. `{ worker: 1 }`). Default none. */
  fields?: Record<string, unknown>;
}

/** A Logger that writes one JSON object per line: time, level, msg, then the context fields. */
export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const min = levels.indexOf(options.level ?? "info");
  if (min < 0) {
    throw new TypeError(`unknown log level ${JSON.stringify(options.level)}: expected one of ${levels.join(", ")}`);
  }
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const fields = options.fields ?? {};
  const log = (level: LogLevel) =>
    levels.indexOf(level) < min
      ? () => {}
      : (msg: string, context?: Record<string, unknown>) =>
          write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields, ...context })}\n`);
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

export function isLogLevel(value: unknown): value is LogLevel {
  return levels.includes(value as LogLevel);
}
