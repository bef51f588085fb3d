/**
 * A crash inside a sandbox dumps no core: no file, and no core-dump helper
 * started on the host, even when /proc/sys/kernel/core_pattern is a pipe
 * ("|/usr/lib/systemd/systemd-coredump …", apport). The kernel runs such a
 * helper as host root for every crash, whatever RLIMIT_CORE says, except
 * when it is exactly 1 (fs/coredump.c coredump_pipe()); the launcher sets 1.
 *
 * The pipe test sets the host's core_pattern, host-wide, for about a second,
 * to a helper that only records that it ran, and always puts the original
 * back. A crash elsewhere on the host in that second would reach the helper
 * too (and dump no core).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { slotIdentity } from '../../../runtime/slots/lease.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { uidBase } from '../../helpers/uid-bases.ts';
import { CompiledProbe, explain } from './probes.ts';

const SLOTS = 1;
const SLOT = slotIdentity(0, uidBase('runtime/core-dumps', SLOTS));
const CORE_PATTERN = '/proc/sys/kernel/core_pattern';
const SIGSEGV = 11;
const SIGABRT = 6;
/** The kernel starts the helper before the crashing process is gone (UMH_WAIT_EXEC); this covers the helper's own write. */
const HELPER_GRACE_MS = 300;
const HELPER_WAIT_MS = 3000;

let rt: TestRuntime;
let probe: CompiledProbe;
const work = mkdtempSync(join(tmpdir(), 'brig-core-'));
const helper = join(work, 'helper.sh');
const helperLog = join(work, 'helper.log');

before(async () => {
  chmodSync(work, 0o755);
  // %u: the crashing process's real uid in the host's namespace; %s: the signal.
  writeFileSync(helper, `#!/bin/sh\necho "$1 $2" >> ${helperLog}\n`, { mode: 0o755 });
  rt = await startTestRuntime('runtime/core-dumps', { slots: SLOTS });
  probe = await CompiledProbe.compile(rt, 'crash.c');
});
after(async () => {
  probe?.close();
  await rt?.close();
  rmSync(work, { recursive: true, force: true });
});

const crash = (mode: string, signal: string) => probe.run(`${mode} ${signal}\n`);

/** Lines the helper wrote: "uid signal" for each crash it was started for. */
function helperCalls(): { uid: number; signal: number }[] {
  if (!existsSync(helperLog)) return [];
  return readFileSync(helperLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [uid, signal] = line.split(' ').map(Number);
      return { uid: uid!, signal: signal! };
    });
}

async function waitForHelper(uid: number): Promise<boolean> {
  const deadline = Date.now() + HELPER_WAIT_MS;
  while (Date.now() < deadline) {
    if (helperCalls().some((c) => c.uid === uid)) return true;
    await sleep(50);
  }
  return false;
}

/**
 * Runs `body` with the host's core_pattern piped to the recording helper,
 * and puts the original back however `body` ends. Skips when this host does
 * not let even root set core_pattern (a container's read-only /proc/sys).
 */
async function withPipeHelper(t: TestContext, body: () => Promise<void>): Promise<void> {
  const original = readFileSync(CORE_PATTERN, 'utf8').replace(/\n$/, '');
  try {
    writeFileSync(CORE_PATTERN, `|${helper} %u %s`);
  } catch (error) {
    t.skip(`cannot set ${CORE_PATTERN} here: ${(error as Error).message}`);
    return;
  }
  try {
    await body();
  } finally {
    writeFileSync(CORE_PATTERN, original);
    assert.equal(readFileSync(CORE_PATTERN, 'utf8').replace(/\n$/, ''), original, `${CORE_PATTERN} was not restored`);
  }
}

for (const [signal, number] of [
  ['segv', SIGSEGV],
  ['abrt', SIGABRT],
] as const) {
  test(`a SIG${signal.toUpperCase()} inside leaves no core file: RLIMIT_CORE is 1, under a file dump's minimum of a page`, async () => {
    const r = await crash('crash', signal);
    assert.equal(r.verdict, 'ok', explain(r));
    assert.match(r.stdout, /^RLIMIT_CORE: 1 1$/m, explain(r));
    assert.match(r.stdout, new RegExp(`^child: signal ${number}, core dumped no$`, 'm'), explain(r));
    assert.match(r.stdout, /^core files in \.: none$/m, explain(r));
    assert.match(r.stdout, /^core files in \/tmp: none$/m, explain(r));
  });
}

test('with a pipe core_pattern, crashes inside start no host helper, while a crash on the host does', async (t) => {
  rmSync(helperLog, { force: true });
  const results = await (async () => {
    const out: Awaited<ReturnType<typeof crash>>[] = [];
    await withPipeHelper(t, async () => {
      // The control: a host process (root) crashing must reach the helper, or this test proves nothing.
      spawnSync('/bin/sh', ['-c', 'kill -SEGV $$']);
      if (!(await waitForHelper(0))) {
        t.skip('the kernel started no helper for a crash on the host either (usermode helpers off?)');
        return;
      }
      out.push(await crash('crash', 'segv'), await crash('crash', 'abrt'));
      await sleep(HELPER_GRACE_MS);
    });
    return out;
  })();
  for (const r of results) {
    assert.equal(r.verdict, 'ok', explain(r));
    assert.match(r.stdout, /core dumped no$/m, explain(r));
  }
  const fromSandbox = helperCalls().filter((c) => c.uid === SLOT.rootHostId || c.uid === SLOT.userHostId);
  assert.deepEqual(fromSandbox, [], 'the host core-dump helper was started for a crash inside the sandbox');
});

// Any process may lower its limits, and at 0 a pipe helper runs again: the
// seccomp profile refuses setrlimit/prlimit64 on RLIMIT_CORE.
test('a program that tries to lower its own RLIMIT_CORE to 0 is refused, and starts no host helper', async (t) => {
  rmSync(helperLog, { force: true });
  let r: Awaited<ReturnType<typeof crash>> | undefined;
  let helped = false;
  await withPipeHelper(t, async () => {
    r = await crash('crash-core-0', 'segv');
    helped = await waitForHelper(SLOT.userHostId);
  });
  assert.ok(r, 'the probe did not run');
  assert.match(r.stdout, /^lower RLIMIT_CORE to 0: EPERM$/m, explain(r));
  assert.equal(helped, false, `the host helper ran for the sandbox's crash:\n${explain(r)}`);
});
