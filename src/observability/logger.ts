import pino, { type Logger } from "pino";

export type { Logger };

/**
 * The root logger of a process. JSON lines on stdout (one object per line, so a log shipper or a
 * test can parse them); pretty-printed when stdout is a terminal and LOG_FORMAT is not "json".
 */
export function createLogger(level: string, bindings: Record<string, unknown>): Logger {
  const pretty = process.stdout.isTTY && process.env.LOG_FORMAT !== "json";
  return pino({
    level,
    base: bindings,
    timestamp: pino.stdTimeFunctions.isoTime,
    transport: pretty ? { target: "pino-pretty", options: { colorize: true, ignore: "pid,hostname" } } : undefined,
  });
}
