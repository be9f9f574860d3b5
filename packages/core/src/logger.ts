/**
 * Where meshlite reports what it does not throw: resolver failures, endpoints
 * that fail to connect, recoveries. Every method takes a message and an
 * optional structured context.
 */
export interface Logger {
  debug(message: string, context?: Record<string, unknown>): void;
  info(message: string, context?: Record<string, unknown>): void;
  warn(message: string, context?: Record<string, unknown>): void;
  error(message: string, context?: Record<string, unknown>): void;
}

/**
 * The default logger: warnings and errors to the console, prefixed with
 * `[meshlite]`; debug and info are dropped.
 */
export const consoleLogger: Logger = {
  debug() {},
  info() {},
  warn(message, context) {
    console.warn(`[meshlite] ${message}`, ...(context ? [context] : []));
  },
  error(message, context) {
    console.error(`[meshlite] ${message}`, ...(context ? [context] : []));
  },
};

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
