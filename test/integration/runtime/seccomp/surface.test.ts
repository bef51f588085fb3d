/**
 * test/probes/seccomp-surface.c run on this host's kernel under the compiled
 * default profile, loaded the way the launcher loads it (seccomp-check
 * --exec): every socket and syscall of the table in
 * test/probes/seccomp-surface.expected.ts. As root, the kernel's own
 * capability checks pass, so a refusal here can only be the filter's; a
 * second run under a filter that denies nothing the probe touches shows
 * what the kernel itself answers, and every refused attempt must answer
 * differently there.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileProfile, loadAndCompile } from '../../../../runtime/seccomp/compile.ts';
import { validateProfile } from '../../../../runtime/seccomp/profile.ts';
import { expectedSurface, parseSurfaceReport, refusedAttempts, surfaceProblems } from '../../../probes/seccomp-surface.expected.ts';

const PROBES_DIR = fileURLToPath(new URL('../../../probes/', import.meta.url));
const DEFAULT_PROFILE = fileURLToPath(new URL('../../../../profiles/seccomp/default.json', import.meta.url));
const PROBE_TIMEOUT_MS = 60_000;
/**
 * The baseline filter refuses socket creation and sync with an errno the
 * kernel never uses: unfiltered, socket() for every family would load
 * network modules into the host, and sync() would flush the host's disks.
 */
const BASELINE_ERRNO = 200;

let workDir = '';
let loaderPath = '';
let probePath = '';
let skipReason: string | undefined;

function build(source: string, output: string): void {
  const run = spawnSync('cc', ['-std=gnu17', '-Wall', '-Wextra', '-Werror', '-O1', '-o', output, join(PROBES_DIR, source)], {
    encoding: 'utf8',
  });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    skipReason = 'cc is not installed: cannot build the probes';
    return;
  }
  assert.equal(run.status, 0, `building ${source} failed:\n${run.stderr}`);
}

before(() => {
  workDir = mkdtempSync(join(tmpdir(), 'brig-seccomp-surface-'));
  loaderPath = join(workDir, 'seccomp-check');
  probePath = join(workDir, 'seccomp-surface');
  build('seccomp-check.c', loaderPath);
  if (skipReason === undefined) build('seccomp-surface.c', probePath);
});

after(() => {
  rmSync(workDir, { recursive: true, force: true });
});

function skipped(t: TestContext): boolean {
  if (skipReason !== undefined) t.skip(skipReason);
  return skipReason !== undefined;
}

/** Runs the probe under `bpf`, from a scratch cwd, and returns its report. */
function runSurface(fileName: string, bpf: Buffer): { report: Map<string, string>; stdout: string } {
  const filterPath = join(workDir, fileName);
  writeFileSync(filterPath, bpf);
  const run = spawnSync(loaderPath, [filterPath, '--exec', probePath], { cwd: workDir, encoding: 'utf8', timeout: PROBE_TIMEOUT_MS });
  assert.equal(run.status, 0, `the probe failed: ${run.stderr}`);
  assert.match(run.stdout, /^done$/m, `the probe stopped early:\n${run.stdout}`);
  return { report: parseSurfaceReport(run.stdout), stdout: run.stdout };
}

test('on the host kernel, every attempt of the surface probe gets the answer the default profile promises', (t) => {
  if (skipped(t)) return;
  const { report } = runSurface('default.bpf', loadAndCompile(DEFAULT_PROFILE).bpf);
  assert.deepEqual(surfaceProblems(report, expectedSurface()), []);
});

test("each refusal is the filter's: without it, the kernel answers every refused attempt differently", (t) => {
  if (skipped(t)) return;
  if (process.getuid?.() !== 0) return t.skip("needs root: only then do the kernel's capability checks pass");
  const filtered = runSurface('default.bpf', loadAndCompile(DEFAULT_PROFILE).bpf).report;
  const baselineProfile = validateProfile(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['socket', 'socketpair', 'sync'], action: 'SCMP_ACT_ERRNO', errnoRet: BASELINE_ERRNO }],
    },
    'inline:baseline',
  );
  const baseline = runSurface('baseline.bpf', compileProfile(baselineProfile)).report;
  const same = refusedAttempts(expectedSurface())
    .filter((what) => baseline.get(what) === filtered.get(what))
    .map((what) => `${what}: ${filtered.get(what)} with and without the filter`);
  assert.deepEqual(same, []);
});
