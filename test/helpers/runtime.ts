import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RuntimeConfig } from '../../runtime/config.ts';
import type { Limits } from '../../runtime/limits.ts';
import { Runtime } from '../../runtime/runtime.ts';
import { runSubmission, type SubmissionResult, type SubmissionSpec } from '../../runtime/submission.ts';
import { loadRuntimeConfig } from '../../services/shared/config.ts';
import { type UidOwner, uidBase } from './uid-bases.ts';

const DEFAULT_TEST_SLOTS = 2;

export interface TestRuntime {
  runtime: Runtime;
  config: RuntimeConfig;
  stateDir: string;
  /** Runs one source file through compile and run. */
  run(
    language: string,
    source: string,
    opts?: { stdin?: string | Buffer; limits?: Partial<Limits>; files?: SubmissionSpec['files']; args?: string[] },
  ): Promise<SubmissionResult>;
  close(): Promise<void>;
}

const CGROUP_ROOT = '/sys/fs/cgroup';
const TEST_PARENT = /^brig-test-(\d+)$/;

/**
 * Test parents are named after the test process, so a test killed mid-run
 * (a timeout, say) leaves its parent behind. Remove those of dead processes;
 * their slots were already swept of processes by the kernel's namespace
 * teardown, so only empty directories remain.
 */
function removeStaleTestParents(): void {
  for (const hierarchy of readdirSync(CGROUP_ROOT)) {
    const base = join(CGROUP_ROOT, hierarchy);
    let names: string[];
    try {
      names = readdirSync(base);
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = TEST_PARENT.exec(name)?.[1];
      if (!pid || existsSync(`/proc/${pid}`)) continue;
      const parent = join(base, name);
      try {
        for (const slot of readdirSync(parent, { withFileTypes: true })) if (slot.isDirectory()) rmdirSync(join(parent, slot.name));
        rmdirSync(parent);
      } catch {
        // still busy: leave it for a later run
      }
    }
  }
}

/**
 * A real runtime (real cgroups, real sandboxes) in a private state dir and
 * cgroup parent, running as the host uids the table gives `owner`.
 */
export async function startTestRuntime(owner: UidOwner, overrides: Omit<Partial<RuntimeConfig>, 'uidBase'> = {}): Promise<TestRuntime> {
  removeStaleTestParents();
  const slots = overrides.slots ?? DEFAULT_TEST_SLOTS;
  const base = uidBase(owner, slots);
  const stateDir = mkdtempSync(join(tmpdir(), 'brig-test-state-'));
  const config = { ...loadRuntimeConfig({}), stateDir, cgroupParent: `brig-test-${process.pid}`, uidBase: base, slots, ...overrides };
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
