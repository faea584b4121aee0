/**
 * Resident memory and CPU of server processes, read from /proc (Linux):
 * VmRSS sampled every 100 ms for a per-phase peak, VmHWM (the kernel's peak
 * since start) at the end of each phase, and utime+stime for the CPU used.
 */

const SAMPLE_EVERY_MS = 100;
/** Kernel clock ticks per second for /proc/PID/stat times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS_PER_SEC = 100;
const KiB_PER_MiB = 1024;

export interface ProcPhaseStats {
  /** Highest VmRSS seen while the phase ran, MiB. */
  peakRssMiB: number;
  /** VmHWM at the end of the phase (peak since the process started), MiB. */
  hwmMiB: number;
  /** CPU time used during the phase, as a percentage of one core. */
  cpuPct: number;
}

/** Resident memory of `pid` now (VmRSS) and at its peak (VmHWM), KiB; undefined once it is gone. */
export function readStatus(pid: number): { rssKiB: number; hwmKiB: number } | undefined {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(text);
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(text);
    return { rssKiB: rss ? Number(rss[1]) : 0, hwmKiB: hwm ? Number(hwm[1]) : 0 };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system, all threads) used so far by `pid`. */
export function cpuSeconds(pid: number): number {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // fields after the command name (which may contain spaces) in parentheses
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC;
  } catch {
    return NaN;
  }
}

export class ProcSampler {
  #pids: Map<string, number>;
  #peak = new Map<string, number>();
  #cpu0 = new Map<string, number>();
  #t0 = 0;
  #timer?: ReturnType<typeof setInterval>;

  /** `pids`: label -> process id. */
  constructor(pids: Record<string, number>) {
    this.#pids = new Map(Object.entries(pids));
  }

  #sample() {
    for (const [label, pid] of this.#pids) {
      const s = readStatus(pid);
      if (s) this.#peak.set(label, Math.max(this.#peak.get(label) ?? 0, s.rssKiB));
    }
  }

  begin(): void {
    this.#peak.clear();
    this.#t0 = performance.now();
    for (const [label, pid] of this.#pids) this.#cpu0.set(label, cpuSeconds(pid));
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), SAMPLE_EVERY_MS);
  }

  end(): Record<string, ProcPhaseStats> {
    clearInterval(this.#timer);
    this.#sample();
    const seconds = (performance.now() - this.#t0) / 1000;
    const out: Record<string, ProcPhaseStats> = {};
    for (const [label, pid] of this.#pids) {
      const s = readStatus(pid);
      out[label] = {
        peakRssMiB: (this.#peak.get(label) ?? 0) / KiB_PER_MiB,
        hwmMiB: (s?.hwmKiB ?? 0) / KiB_PER_MiB,
        cpuPct: ((cpuSeconds(pid) - (this.#cpu0.get(label) ?? 0)) / seconds) * 100,
      };
    }
    return out;
  }

  /** Runs `fn` as one phase. */
  async measure<T>(
    fn: () => Promise<T>,
  ): Promise<{ value: T; procs: Record<string, ProcPhaseStats> }> {
    this.begin();
    try {
      const value = await fn();
      return { value, procs: this.end() };
    } catch (e) {
      this.end();
      throw e;
    }
  }
}
