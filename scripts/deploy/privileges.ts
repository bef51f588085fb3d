/**
 * The least privilege of a worker container, found for real: the worker
 * service of deploy/compose.yaml (its capabilities and security options, read
 * from the file itself) must build working sandboxes, and every part of it
 * must be needed: without any one capability, without the unmasked /proc,
 * with the engine's default capabilities, a sandbox fails. Each variant runs
 * `brig doctor` and three programs (a compiled hello, a memory bomb, an
 * endless loop) in a fresh container and reports the first thing that failed.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Checklist, expect } from './checks.ts';
import type { CommandResult } from './command.ts';
import { BRIG_IMAGE } from './images.ts';
import { composeFile } from './manifests.ts';
import type { Podman } from './podman.ts';

export interface WorkerPrivileges {
  capAdd: string[];
  securityOpt: string[];
}

/** The worker service's privileges, as deploy/compose.yaml grants them. */
export function workerPrivileges(composePath: string): WorkerPrivileges {
  const worker = composeFile(composePath).services.worker as { cap_add?: string[]; cap_drop?: string[]; security_opt?: string[] };
  if (JSON.stringify(worker.cap_drop) !== '["ALL"]')
    throw new Error('compose.yaml: the worker must drop every capability first (cap_drop: [ALL])');
  return { capAdd: worker.cap_add ?? [], securityOpt: worker.security_opt ?? [] };
}

interface Probe {
  name: string;
  args: string[];
  /** The verdict an honest sandbox gives. */
  verdict: string;
  stdout?: string;
}

const PROBE_FILES: Record<string, string> = {
  'hello.c': '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n',
  'mem.py': 'chunks = []\nwhile True:\n    chunks.append(b"x" * (1 << 20))\n',
  'loop.py': 'while True:\n    pass\n',
};

/** A compile and a run; the kernel's OOM kill in the memory cgroup; Brig's own kill at the CPU limit (another uid: CAP_KILL). */
const PROBES: Probe[] = [
  { name: 'compiled hello', args: ['/probe/hello.c'], verdict: 'ok', stdout: 'hi\n' },
  { name: 'memory bomb', args: ['--memory-mb', '64', '/probe/mem.py'], verdict: 'memory_limit' },
  { name: 'endless loop', args: ['--cpu-ms', '500', '/probe/loop.py'], verdict: 'time_limit' },
];

export interface Variant {
  name: string;
  flags: string[];
  /** What this host must show: 'works', 'fails', or null when the outcome depends on the host (reported only). */
  expect: 'works' | 'fails' | null;
}

export interface VariantOutcome {
  variant: Variant;
  works: boolean;
  /** The first failure: a doctor line or a probe's outcome. */
  failure: string | null;
}

const CONTAINER_TIMEOUT_MS = 120_000;
const PROBE_DIR_MODE = 0o755;
const PROBE_FILE_MODE = 0o644;
const FAILURE_CHARS = 160;

/** Common to every variant: as compose runs a worker, minus what the variant changes. */
function baseFlags(): string[] {
  return ['--rm', '--no-healthcheck', '--read-only', '--tmpfs', '/tmp', '--cgroupns', 'private'];
}

function privilegeFlags(capAdd: string[], securityOpt: string[]): string[] {
  return ['--cap-drop', 'ALL', ...capAdd.flatMap((cap) => ['--cap-add', cap]), ...securityOpt.flatMap((opt) => ['--security-opt', opt])];
}

/** The variants: compose's worker, and each of its grants taken away in turn. */
export function variants(granted: WorkerPrivileges, cgroupVersion: 1 | 2): Variant[] {
  const list: Variant[] = [
    { name: 'as deploy/compose.yaml runs a worker', flags: privilegeFlags(granted.capAdd, granted.securityOpt), expect: 'works' },
  ];
  for (const cap of granted.capAdd) {
    list.push({
      name: `without CAP_${cap}`,
      flags: privilegeFlags(
        granted.capAdd.filter((c) => c !== cap),
        granted.securityOpt,
      ),
      expect: 'fails',
    });
  }
  for (const opt of granted.securityOpt.filter((o) => o !== 'no-new-privileges')) {
    list.push({
      name: `without --security-opt ${opt}`,
      flags: privilegeFlags(
        granted.capAdd,
        granted.securityOpt.filter((o) => o !== opt),
      ),
      expect: 'fails',
    });
  }
  list.push({
    name: "the engine's default capabilities",
    flags: granted.securityOpt.flatMap((opt) => ['--security-opt', opt]),
    expect: 'fails',
  });
  // A user namespace for the container: its root is nobody on the host. On
  // cgroup v1 the container's cgroup files stay root's, so Brig cannot write them.
  list.push({
    name: 'in a user namespace of its own (--uidmap 0:2000000:700000)',
    flags: ['--uidmap', '0:2000000:700000', '--gidmap', '0:2000000:700000', ...privilegeFlags(granted.capAdd, granted.securityOpt)],
    expect: cgroupVersion === 1 ? 'fails' : null,
  });
  return list;
}

/** `brig run --json`'s answer, or null when it printed none (the sandbox failed). */
function parseResult(stdout: string): { run?: { verdict?: string; stdout?: string } } | null {
  try {
    return JSON.parse(stdout) as { run?: { verdict?: string; stdout?: string } };
  } catch {
    return null;
  }
}

/**
 * One container run, named so that it can be removed should podman be killed
 * at the timeout: its --rm never runs then, and the container (a doctor stuck
 * in a variant without some privilege, say) would outlive test:deploy.
 */
async function runContainer(podman: Podman, flags: string[], args: string[]): Promise<CommandResult> {
  const name = `brig-deploy-variant-${randomUUID().slice(0, 8)}`;
  const result = await podman.podman(['run', '--name', name, ...flags, BRIG_IMAGE, ...args], { timeoutMs: CONTAINER_TIMEOUT_MS });
  if (result.signal !== null) await podman.podman(['rm', '--force', '--ignore', name]);
  return result;
}

/** Runs doctor and the probes in fresh containers with the variant's flags. */
export async function tryVariant(podman: Podman, variant: Variant, probeDir: string): Promise<VariantOutcome> {
  const flags = [...baseFlags(), ...variant.flags, '-v', `${probeDir}:/probe:ro`];
  const doctor = await runContainer(podman, flags, ['doctor']);
  if (doctor.code !== 0) {
    const line =
      `${doctor.stdout}\n${doctor.stderr}`.split('\n').find((l) => /^FAIL|brig-entrypoint|^brig:|Error/.test(l)) ?? `exit ${doctor.code}`;
    return { variant, works: false, failure: `doctor: ${line.trim().slice(0, FAILURE_CHARS)}` };
  }
  for (const probe of PROBES) {
    const result = await runContainer(podman, flags, ['run', '--json', ...probe.args]);
    const outcome = parseResult(result.stdout);
    const verdict = outcome?.run?.verdict;
    const stdoutOk = probe.stdout === undefined || outcome?.run?.stdout === probe.stdout;
    if (result.code !== 0 || verdict !== probe.verdict || !stdoutOk) {
      const lines = result.stderr.split('\n');
      // brig's own message, else the thrown error's first line (an uncaught one is preceded by its source line).
      const why = verdict
        ? `verdict ${verdict}`
        : (lines.find((l) => /^(brig:|\w*Error:)/.test(l)) ?? lines.find((l) => /EPERM|EACCES/.test(l)) ?? `exit ${result.code}`);
      return { variant, works: false, failure: `${probe.name}: ${why.slice(0, FAILURE_CHARS)}` };
    }
  }
  return { variant, works: true, failure: null };
}

/** A folder with the probe programs, for a read-only bind mount; remove it with rmSync. */
export function writeProbes(): string {
  const dir = mkdtempSync(join(tmpdir(), 'brig-test-deploy-probes-'));
  chmodSync(dir, PROBE_DIR_MODE); // readable by a container whose root is not the host's
  for (const [name, content] of Object.entries(PROBE_FILES)) writeFileSync(join(dir, name), content, { mode: PROBE_FILE_MODE });
  return dir;
}

export function removeProbes(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** The whole matrix as checks: each variant must do what this host should show. Returns the outcomes, for the summary table. */
export async function checkPrivileges(
  podman: Podman,
  checks: Checklist,
  composePath: string,
  cgroupVersion: 1 | 2,
): Promise<VariantOutcome[]> {
  const granted = workerPrivileges(composePath);
  const probeDir = writeProbes();
  const outcomes: VariantOutcome[] = [];
  try {
    for (const variant of variants(granted, cgroupVersion)) {
      await checks.check(`worker privileges ${variant.name}: ${variant.expect === null ? 'reported' : variant.expect}`, async () => {
        const outcome = await tryVariant(podman, variant, probeDir);
        outcomes.push(outcome);
        const seen = outcome.works ? 'works (doctor, compiled hello, memory bomb, endless loop)' : `fails at ${outcome.failure}`;
        if (variant.expect === 'works') expect(outcome.works, seen);
        if (variant.expect === 'fails') expect(!outcome.works, `${seen}: then it is not needed`);
        return seen;
      });
    }
  } finally {
    removeProbes(probeDir);
  }
  return outcomes;
}
