/**
 * A checklist that prints as it goes: one line per check, "ok" or "FAIL",
 * with what was seen and how long it took; the run fails if any check did.
 */
export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
}

export class Checklist {
  readonly results: CheckResult[] = [];

  /** Runs one check; `body` returns what it saw, or throws what went wrong. Returns whether it passed. */
  async check(name: string, body: () => Promise<string | undefined>): Promise<boolean> {
    const startMs = Date.now();
    try {
      const detail = (await body()) ?? '';
      this.record({ name, ok: true, detail, ms: Date.now() - startMs });
      return true;
    } catch (error) {
      this.record({ name, ok: false, detail: error instanceof Error ? error.message : String(error), ms: Date.now() - startMs });
      return false;
    }
  }

  get failed(): CheckResult[] {
    return this.results.filter((r) => !r.ok);
  }

  private record(result: CheckResult): void {
    this.results.push(result);
    const seconds = (result.ms / 1000).toFixed(1);
    process.stdout.write(`${result.ok ? 'ok  ' : 'FAIL'}  ${result.name}${result.detail ? `: ${result.detail}` : ''} (${seconds} s)\n`);
  }
}

/** Throws `message` unless `condition` holds. */
export function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
