import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSubmission, type JobSpec, type SubmissionResult } from '../../runtime/job.ts';
import type { Limits } from '../../runtime/limits.ts';
import { Runtime } from '../../runtime/runtime.ts';
import { loadRuntimeConfig, type RuntimeConfig } from '../../services/shared/config.ts';

/** Test runtimes lease host uids far from a real service's default base. */
const TEST_UID_BASE = 700000;

export interface TestRuntime {
  runtime: Runtime;
  config: RuntimeConfig;
  stateDir: string;
  /** Runs one source file through compile and run. */
  run(language: string, source: string, opts?: { stdin?: string | Buffer; limits?: Partial<Limits>; files?: JobSpec['files']; args?: string[] }): Promise<SubmissionResult>;
  close(): Promise<void>;
}

/** A real runtime (real cgroups, real sandboxes) in a private state dir and cgroup parent. */
export async function startTestRuntime(overrides: Partial<RuntimeConfig> = {}): Promise<TestRuntime> {
  const stateDir = mkdtempSync(join(tmpdir(), 'brig-test-state-'));
  const config = { ...loadRuntimeConfig({}), stateDir, cgroupParent: `brig-test-${process.pid}`, uidBase: TEST_UID_BASE, slots: 2, ...overrides };
  const runtime = await Runtime.create(config);
  return {
    runtime,
    config,
    stateDir,
    run(language, source, opts = {}) {
      const profile = runtime.language(language);
      const files = opts.files ?? [{ name: profile.sourceFile, content: Buffer.from(source) }];
      const stdin = Buffer.from(opts.stdin ?? '');
      return runSubmission(runtime, { language, files, limits: opts.limits, args: opts.args }, stdin);
    },
    async close() {
      await runtime.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
