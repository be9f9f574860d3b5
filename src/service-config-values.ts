import { Code } from "@connectrpc/connect";

/**
 * Reading the values of a gRPC service config (JSON): each check throws a
 * TypeError that starts with the JSON path of the value, says what is
 * accepted and what was given.
 */
export class ServiceConfigError extends TypeError {
  override name = "ServiceConfigError";
  constructor(
    /** Where in the JSON, e.g. `serviceConfig.methodConfig[1].retryPolicy.maxAttempts`. */
    readonly path: string,
    /** What was wrong, e.g. `must be an integer >= 2, got 1`. */
    readonly problem: string,
    /** What to start the message with (the API called). */
    prefix: string,
  ) {
    super(`${prefix}${path}: ${problem}`);
  }
}

/** Reads values at paths under one root, throwing ServiceConfigError. */
export interface ConfigReader {
  fail(path: string, problem: string): never;
  object(value: unknown, path: string): Record<string, unknown>;
  array(value: unknown, path: string): unknown[];
  string(value: unknown, path: string): string;
  boolean(value: unknown, path: string): boolean;
  /** A number in [min, max]; `integer` requires a whole number. */
  number(value: unknown, path: string, min: number, max?: number, integer?: boolean): number;
  /** A JSON duration ("1.5s", "0.100s") as milliseconds; `positive` rejects "0s". */
  durationMs(value: unknown, path: string, positive?: boolean): number;
  /** A list of status codes, by gRPC name ("UNAVAILABLE") or number. */
  codes(value: unknown, path: string, nonEmpty: boolean): Code[];
}

export function createConfigReader(prefix: string): ConfigReader {
  const fail = (path: string, problem: string): never => {
    throw new ServiceConfigError(path, problem, prefix);
  };
  const reader: ConfigReader = {
    fail,
    object(value, path) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail(path, `must be an object, got ${show(value)}`);
      }
      return value as Record<string, unknown>;
    },
    array(value, path) {
      if (!Array.isArray(value)) fail(path, `must be a list, got ${show(value)}`);
      return value as unknown[];
    },
    string(value, path) {
      if (typeof value !== "string") fail(path, `must be a string, got ${show(value)}`);
      return value as string;
    },
    boolean(value, path) {
      if (typeof value !== "boolean") fail(path, `must be true or false, got ${show(value)}`);
      return value as boolean;
    },
    number(value, path, min, max = Number.POSITIVE_INFINITY, integer = false) {
      // protobuf JSON allows 64-bit integers as strings ("1024").
      const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
      const ok =
        typeof n === "number" && Number.isFinite(n) && n >= min && n <= max && (!integer || Number.isInteger(n));
      if (!ok) {
        const kind = integer ? "an integer" : "a number";
        const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `from ${min} to ${max}`;
        fail(path, `must be ${kind} ${range}, got ${show(value)}`);
      }
      return n as number;
    },
    durationMs(value, path, positive = false) {
      const match = typeof value === "string" ? /^(\d+)(?:\.(\d{1,9}))?s$/.exec(value) : null;
      if (match === null) {
        fail(path, `must be a duration string of seconds such as "1.5s" or "0.100s", got ${show(value)}`);
      }
      const [, whole, fraction = ""] = match as RegExpExecArray;
      const ms = Number(whole) * 1000 + Number(`0.${fraction || "0"}`) * 1000;
      if (positive && ms <= 0) fail(path, `must be a duration above 0s, got ${show(value)}`);
      return ms;
    },
    codes(value, path, nonEmpty) {
      const list = reader.array(value, path);
      if (nonEmpty && list.length === 0) fail(path, "must name at least one status code, got []");
      return list.map((item, i) => statusCode(item, `${path}[${i}]`, fail));
    },
  };
  return reader;
}

/** gRPC's status code names (grpc spells CANCELLED with two Ls). */
const codeNames: Readonly<Record<string, Code>> = {
  CANCELLED: Code.Canceled,
  CANCELED: Code.Canceled,
  UNKNOWN: Code.Unknown,
  INVALID_ARGUMENT: Code.InvalidArgument,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  PERMISSION_DENIED: Code.PermissionDenied,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  ABORTED: Code.Aborted,
  OUT_OF_RANGE: Code.OutOfRange,
  UNIMPLEMENTED: Code.Unimplemented,
  INTERNAL: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
  DATA_LOSS: Code.DataLoss,
  UNAUTHENTICATED: Code.Unauthenticated,
};

function statusCode(value: unknown, path: string, fail: ConfigReader["fail"]): Code {
  if (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 16) return value as Code;
  if (typeof value === "string") {
    const code = codeNames[value.toUpperCase()];
    if (code !== undefined) return code;
  }
  return fail(path, `must be a status code name such as "UNAVAILABLE" or a number from 1 to 16, got ${show(value)}`);
}

/** A value as it appears in JSON, shortened. */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
