/**
 * CPU time of processes from /proc/<pid>/stat, for the benchmarks' "CPU per
 * run" figures: what a process spent itself, and what its reaped children
 * (and theirs) spent. The kernel counts in clock ticks (USER_HZ, 100 on
 * Linux for every architecture Brig runs on), so a figure is good to 10 ms:
 * fine over a block of hundreds of runs, not for one run.
 */
import { readFileSync } from 'node:fs';

const MS_PER_TICK = 10;
/** Fields of /proc/<pid>/stat after the ")" that ends the command name: utime, stime, cutime, cstime (man 5 proc, fields 14–17). */
const UTIME = 11;
const STIME = 12;
const CUTIME = 13;
const CSTIME = 14;

export interface ProcessCpu {
  /** The process itself: user and system time, ms. */
  selfMs: number;
  /** Its reaped descendants (a launcher, and the sandbox it reaped), ms. */
  childrenMs: number;
}

export function processCpu(pid: number): ProcessCpu {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces and parentheses: the fields start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = (i: number) => Number(fields[i]);
  return { selfMs: (ticks(UTIME) + ticks(STIME)) * MS_PER_TICK, childrenMs: (ticks(CUTIME) + ticks(CSTIME)) * MS_PER_TICK };
}

/** Which of a process's figures a name stands for: its own time, or its reaped descendants'. */
export interface CpuSource {
  pid: number;
  part: 'self' | 'children';
}

/** CPU spent over spans of work, by name, ms. */
export class CpuTally {
  private readonly totals = new Map<string, number>();

  /** Runs work, and adds to each name what its source spent meanwhile. */
  async during<T>(sources: Record<string, CpuSource>, work: () => Promise<T>): Promise<T> {
    const before = Object.entries(sources).map(([name, source]) => [name, source, processCpu(source.pid)] as const);
    const result = await work();
    for (const [name, source, then] of before) {
      const now = processCpu(source.pid);
      const spent = source.part === 'self' ? now.selfMs - then.selfMs : now.childrenMs - then.childrenMs;
      this.totals.set(name, (this.totals.get(name) ?? 0) + spent);
    }
    return result;
  }

  /** Every name's total, and their sum, per run: "name 1.23 ms, …, in all 4.56 ms". */
  perRun(runs: number): string {
    let sum = 0;
    const parts = [...this.totals].map(([name, ms]) => {
      sum += ms;
      return `${name} ${(ms / runs).toFixed(2)} ms`;
    });
    return `${parts.join(', ')}; in all ${(sum / runs).toFixed(2)} ms`;
  }
}
