/**
 * Logging with levels and per-module filters from REMISE_LOG, e.g.
 * `REMISE_LOG=info,remise::table=debug`: the first bare level is the default,
 * `module=level` applies to that module and its sub-modules.
 */
export type LogLevel = "error" | "warn" | "info" | "debug" | "trace";
const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

interface Filter {
  defaultLevel: number;
  modules: [string, number][];
}

let filter: Filter = { defaultLevel: LEVELS.info, modules: [] };
const cache = new Map<string, number>();

export function parseLogFilter(spec: string): Filter {
  const result: Filter = { defaultLevel: LEVELS.info, modules: [] };
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    const levelName = (eq < 0 ? part : part.slice(eq + 1)).toLowerCase();
    if (!(levelName in LEVELS)) {
      throw new Error(
        `REMISE_LOG: unknown level "${levelName}" (use error, warn, info, debug or trace)`,
      );
    }
    const level = LEVELS[levelName as LogLevel];
    if (eq < 0) result.defaultLevel = level;
    else result.modules.push([part.slice(0, eq), level]);
  }
  result.modules.sort((a, b) => b[0].length - a[0].length);
  return result;
}

export function setLogFilter(spec: string): void {
  filter = parseLogFilter(spec);
  cache.clear();
}

function levelFor(module: string): number {
  let level = cache.get(module);
  if (level === undefined) {
    const match = filter.modules.find(([m]) => module === m || module.startsWith(m + "::"));
    level = match ? match[1] : filter.defaultLevel;
    cache.set(module, level);
  }
  return level;
}

export function logEnabled(module: string, level: LogLevel): boolean {
  return LEVELS[level] <= levelFor(module);
}

// deno-lint-ignore no-control-regex
const LINE_BREAKING = /[\u0000-\u0008\u000a-\u001f\u007f]/g;

/**
 * One line per message: control characters are written as escapes, so that
 * text from a request (a header value in an error) cannot forge log lines.
 */
function oneLine(message: string): string {
  return message.replace(
    LINE_BREAKING,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

export function log(module: string, level: LogLevel, message: string): void {
  if (!logEnabled(module, level)) return;
  const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${module}: ${
    oneLine(message)
  }`;
  if (LEVELS[level] <= LEVELS.warn) console.error(line);
  else console.log(line);
}

/**
 * A message that may come once per request during an outage (a quorum not
 * reached, a full disk): logged at most once per `intervalMs`, with how
 * many were left out since the last one logged.
 */
export class SampledLog {
  #lastMs = -Infinity;
  #skipped = 0;

  constructor(
    private readonly module: string,
    private readonly level: LogLevel,
    private readonly intervalMs: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  log(message: string): void {
    const now = this.nowMs();
    if (now - this.#lastMs < this.intervalMs) {
      this.#skipped++;
      return;
    }
    const skipped = this.#skipped;
    this.#lastMs = now;
    this.#skipped = 0;
    log(
      this.module,
      this.level,
      skipped > 0 ? `${message} (${skipped} more since the last)` : message,
    );
  }
}
