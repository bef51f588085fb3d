/**
 * Every way out we thought of, tried from inside a real sandbox by
 * test/probes/escapes.c. The probe runs once (in `before`) and reports one
 * "what: result" line per attempt; each test below checks one group of
 * attempts and, where it can, the host side too (listeners that must see no
 * connection, a canary file, host processes that must survive kill(-1)).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { StepResult } from '../../../runtime/result.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { CAP_SYS_RESOURCE, cgroupLeftovers, hostRootHolds, isAlive, sandboxLeftovers, slotHostUids } from './host-state.ts';
import { CompiledProbe, explain, parseReport, reportValues } from './probes.ts';

const SECRET_NAME = 'BRIG_TEST_SECRET';
const SECRET_VALUE = 's3cret';
const ZERO_CAPS = '0000000000000000';
const INNER_ROOT = 0;
const INNER_USER = 1000;
const HOST_SLEEP_S = '60';

let rt: TestRuntime;
let probe: CompiledProbe;
let result: StepResult;
let report: Map<string, string>;
let tcp: Server;
let abstract: Server;
let tcpConnections = 0;
let abstractConnections = 0;
let hostIp: string | undefined;
const canary = join(tmpdir(), `brig-canary-${process.pid}`);
const abstractName = `brig-probe-${process.pid}`;
/** Host processes kill(-1) inside the sandbox must not reach: one root, one per slot host uid. */
const hostSleepers: { uid: number; child: ChildProcess }[] = [];

before(async () => {
  // Set before the runtime exists, the way a worker's own secrets would be.
  process.env[SECRET_NAME] = SECRET_VALUE;
  rt = await startTestRuntime('runtime/escapes', { slots: 2 });
  writeFileSync(canary, 'the sandbox must not be able to delete this\n');
  tcp = await listen(
    createServer((s) => {
      tcpConnections++;
      s.destroy();
    }),
    { host: '0.0.0.0', port: 0 },
  );
  abstract = await listen(
    createServer((s) => {
      abstractConnections++;
      s.destroy();
    }),
    { path: `\0${abstractName}` },
  );
  hostIp = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  for (const uid of [0, ...slotHostUids(rt.config)]) {
    hostSleepers.push({ uid, child: spawn('/bin/sleep', [HOST_SLEEP_S], { uid, gid: uid, stdio: 'ignore' }) });
  }

  probe = await CompiledProbe.compile(rt, 'escapes.c');
  const input = [`port ${(tcp.address() as AddressInfo).port}`, `canary ${canary}`, `abstract ${abstractName}`, `secret ${SECRET_NAME}`];
  if (hostIp) input.push(`hostip ${hostIp}`);
  result = await probe.run(`${input.join('\n')}\n`, { cpuMs: 2000, wallMs: 10_000, memoryMb: 64, processes: 16, outputBytes: 1 << 16 });
  report = parseReport(result.stdout);
});

after(async () => {
  for (const { child } of hostSleepers) child.kill('SIGKILL');
  tcp?.close();
  abstract?.close();
  rmSync(canary, { force: true });
  probe?.close();
  await rt?.close();
  delete process.env[SECRET_NAME];
});

/** Asserts that each attempt's result is one of `allowed` (e.g. ['EPERM']), quoting the whole report on failure. */
function expectResults(attempts: string[], allowed: string[]): void {
  for (const what of attempts) {
    const got = report.get(what);
    assert.ok(got !== undefined, `the probe did not report "${what}":\n${explain(result)}`);
    assert.ok(
      allowed.some((a) => got === a || got.startsWith(`${a} `)),
      `"${what}" gave "${got}", expected ${allowed.join(' or ')}:\n${explain(result)}`,
    );
  }
}

test('the probe runs to the end as uid 1000, pid 2, child of the sandbox init', () => {
  assert.equal(result.verdict, 'ok', explain(result));
  assert.match(result.stdout, /^done$/m, `the probe stopped early:\n${explain(result)}`);
  assert.equal(report.get('getuid'), String(INNER_USER), explain(result));
  assert.equal(report.get('geteuid'), String(INNER_USER), explain(result));
  assert.equal(report.get('getgid'), String(INNER_USER), explain(result));
  assert.equal(report.get('getpid'), '2', explain(result));
  assert.equal(report.get('getppid'), '1', explain(result));
});

test('capabilities are all zero, no_new_privs is set and a seccomp filter is on', () => {
  for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
    assert.equal(report.get(`status ${set}`), ZERO_CAPS, `${set} is not empty:\n${explain(result)}`);
  }
  assert.equal(report.get('status NoNewPrivs'), '1', explain(result));
  assert.equal(report.get('status Seccomp'), '2', `2 means a filter is loaded:\n${explain(result)}`);
});

test("the id maps send inner root and uid 1000 to the slot's unprivileged host ids, never to 0", () => {
  const slotIds = new Set(slotHostUids(rt.config));
  for (const map of ['uid_map', 'gid_map']) {
    const lines = reportValues(result.stdout, map).map((l) => l.split(' ').map(Number));
    assert.deepEqual(
      lines.map(([inner, , count]) => [inner, count]),
      [
        [INNER_ROOT, 1],
        [INNER_USER, 1],
      ],
      `${map} maps more than two single ids:\n${explain(result)}`,
    );
    for (const [inner, host] of lines) {
      assert.ok(host !== 0 && slotIds.has(host!), `${map} maps inner ${inner} to host ${host}, not a slot id of ${[...slotIds].join(',')}`);
    }
  }
});

test("the sandbox's /proc shows only the program's own processes: init (pid 1, inner root) is hidden", () => {
  assert.equal(report.get('proc pids'), '2', `other processes are visible:\n${explain(result)}`);
  expectResults(
    ['read /proc/1/environ', 'read /proc/1/mem', 'read /proc/1/root/etc/hostname', 'list /proc/1/root/tmp'],
    ['ENOENT', 'EACCES'],
  );
});

test("the worker's environment does not leak into the program, nor into any /proc/*/environ inside", () => {
  assert.ok(!result.stdout.includes(SECRET_VALUE), `the secret's value is visible inside:\n${explain(result)}`);
  assert.doesNotMatch(result.stdout, /SECRET PRESENT/, explain(result));
  const names = reportValues(result.stdout, 'env').map((e) => e.slice(0, e.indexOf('=')));
  assert.deepEqual(names.sort(), ['HOME', 'LANG', 'LC_ALL', 'PATH', 'TMPDIR'], `unexpected environment:\n${explain(result)}`);
});

test('host files are out of reach: /etc/shadow, /root, /home, /var, /run, /sys, kernel memory and log', () => {
  expectResults(
    ['read /etc/shadow', 'read /etc/gshadow', 'list /root', 'list /home', 'list /var', 'list /run', 'list /sys', 'list /sys/fs/cgroup'],
    ['ENOENT'],
  );
  // Masked: /dev/null is bound over them, so they read as empty.
  expectResults(['read /proc/kcore', 'read /proc/kmsg'], ['ok (0 bytes)', 'ENOENT', 'EACCES', 'EPERM']);
});

test("the host image shows the toolchains of /usr, not the administrator's: no /usr/local, /usr/etc, /usr/src, /usr/sbin", () => {
  const usr = /^ok \((.*)\)$/.exec(report.get('list /usr') ?? '')?.[1]?.split(' ') ?? [];
  assert.ok(
    ['bin', 'lib', 'share'].every((d) => usr.includes(d)),
    `/usr lacks a toolchain folder:\n${explain(result)}`,
  );
  for (const hidden of ['local', 'etc', 'src', 'sbin', 'libexec', 'games'])
    assert.ok(!usr.includes(hidden), `/usr/${hidden} is visible:\n${explain(result)}`);
  // /usr/local/etc/npmrc held registry credentials on the machine this was found on; npm's global config is /usr/etc/npmrc.
  expectResults(['list /usr/local', 'read /usr/local/etc/npmrc', 'read /usr/etc/npmrc', 'list /usr/src'], ['ENOENT']);
});

/** /proc entries a program may read, and why: see runtime/launcher/kernel-view.ts. */
const PROC_KEPT = new Set(['self', 'thread-self', 'mounts', 'net', 'cpuinfo', 'meminfo', 'version', 'filesystems', 'sysvipc', 'sys']);
const PROC_SYS_KEPT = new Set(['abi', 'net', 'user', 'vm']);
/** How a masked (or root-only) entry looks from inside. */
const EMPTY = /^(file 0 bytes|dir 0 entries|EACCES|EPERM)$/;

/** "proc /proc/NAME: …" lines of one folder → NAME → result. */
function procEntries(dir: string): Map<string, string> {
  const prefix = `proc ${dir}/`;
  return new Map(
    [...report]
      .filter(([what]) => what.startsWith(prefix) && !what.slice(prefix.length).includes('/'))
      .map(([what, got]) => [what.slice(prefix.length), got]),
  );
}

test('/proc shows nothing of the host but what programs need: every other entry is masked empty', () => {
  const entries = procEntries('/proc');
  assert.ok(entries.size > 20, `the probe listed only ${entries.size} /proc entries:\n${explain(result)}`);
  for (const kept of ['self', 'cpuinfo', 'meminfo', 'mounts']) {
    assert.match(
      entries.get(kept) ?? '',
      /^(file [1-9]\d* bytes|dir [1-9]\d* entries)$/,
      `/proc/${kept} is needed by language runtimes:\n${explain(result)}`,
    );
  }
  const shown = [...entries].filter(([name, got]) => !PROC_KEPT.has(name) && !EMPTY.test(got));
  assert.deepEqual(shown, [], `/proc entries that show host state:\n${explain(result)}`);
  // What the review found, by name (each where this kernel has it).
  for (const name of [
    'cmdline',
    'cgroups',
    'pressure',
    'interrupts',
    'stat',
    'loadavg',
    'kallsyms',
    'modules',
    'swaps',
    'partitions',
    'diskstats',
    'vmstat',
    'locks',
  ]) {
    const got = entries.get(name);
    if (got !== undefined) assert.match(got, EMPTY, `/proc/${name} is not masked:\n${explain(result)}`);
  }
  assert.equal(entries.get('cmdline'), 'file 0 bytes', explain(result));
  assert.equal(entries.get('cgroups'), 'file 0 bytes', explain(result));
});

test('/proc/sys is read-only, and its kernel, fs, dev and debug parts are masked', () => {
  const entries = procEntries('/proc/sys');
  for (const name of ['kernel', 'fs'])
    assert.equal(entries.get(name), 'dir 0 entries', `/proc/sys/${name} is not masked:\n${explain(result)}`);
  const shown = [...entries].filter(([name, got]) => !PROC_SYS_KEPT.has(name) && !EMPTY.test(got));
  assert.deepEqual(shown, [], `/proc/sys parts that show host state:\n${explain(result)}`);
  assert.match(report.get('statvfs /proc/sys') ?? '', /^ok \(ro /, explain(result));
  // The program is refused by the files' owner and mode before the read-only mount is asked; statvfs above shows the mount.
  expectResults(
    ['write /proc/sys/vm/drop_caches', 'write /proc/sys/vm/overcommit_memory', 'write /proc/sys/net/ipv4/ip_forward'],
    ['EACCES', 'EROFS'],
  );
  expectResults(['write /proc/sys/kernel/hostname'], ['ENOENT']);
});

test('the masks cannot be undone: unmounting them or remounting /proc/sys writable is denied', () => {
  expectResults(['umount /proc/cmdline', 'umount /proc/sys/kernel', 'remount /proc/sys rw'], ['EPERM']);
});

test("the sandbox's user namespace belongs to the slot's root id (inner root), not to host root", () => {
  // Host root is unmapped inside, and an owner that is host root would read as 65534.
  assert.equal(report.get('userns owner'), String(INNER_ROOT), explain(result));
});

/** The probe's rlimits as /proc/self/limits shows them, soft then hard, for the limits of before(). */
const EXPECTED_LIMITS: Record<string, string> = {
  'Max core file size': '1 1',
  'Max address space': 'unlimited unlimited',
  'Max data size': 'unlimited unlimited',
  'Max locked memory': '0 0',
  'Max msgqueue size': '0 0',
  'Max nice priority': '0 0',
  'Max realtime priority': '0 0',
  'Max processes': '32 32',
  'Max pending signals': '1024 1024',
  'Max resident set': `${64 * 1024 * 1024} ${64 * 1024 * 1024}`,
  'Max cpu time': '3 4',
};
/** Address space is not memory: see runtime/launcher/rlimits.ts. */
const UNLIMITED_ON_PURPOSE = new Set(['Max address space', 'Max data size']);

test('every rlimit is set by Brig, none inherited from the worker; RLIMIT_CORE is 1 (no core file, no core-dump helper)', () => {
  const limits = [...report.keys()].filter((what) => what.startsWith('limit Max '));
  assert.equal(limits.length, 16, `/proc/self/limits shows ${limits.length} limits:\n${explain(result)}`);
  for (const [name, value] of Object.entries(EXPECTED_LIMITS))
    assert.equal(report.get(`limit ${name}`), value, `${name}:\n${explain(result)}`);
  for (const [what, got] of report) {
    if (what.startsWith('limit ') && !UNLIMITED_ON_PURPOSE.has(what.slice('limit '.length))) {
      assert.ok(!got.includes('unlimited'), `${what} is unlimited:\n${explain(result)}`);
    }
  }
});

test('the program has the highest OOM score and can never make itself safer than the worker', () => {
  assert.equal(report.get('oom_score_adj'), '1000', explain(result));
  expectResults(['write -1000 to /proc/self/oom_score_adj'], ['EACCES']);
});

test('the program cannot lower its OOM score at all: host root pinned it as the floor', {
  skip: !hostRootHolds(CAP_SYS_RESOURCE) && 'host root lacks CAP_SYS_RESOURCE here, and only a writer holding it pins oom_score_adj_min',
}, () => {
  expectResults(['write 0 to /proc/self/oom_score_adj', 'write 999 to /proc/self/oom_score_adj'], ['EACCES']);
});

test("the host's /tmp is invisible: the sandbox cannot see or delete a canary there", () => {
  expectResults([`stat canary ${canary}`, `unlink canary ${canary}`], ['ENOENT']);
  assert.equal(report.get('list /tmp'), 'ok ()', `the sandbox's /tmp is not its own empty tmpfs:\n${explain(result)}`);
  assert.ok(existsSync(canary), `the canary ${canary} is gone from the host`);
});

test('only the loopback interface exists and /sys/class/net is not there', () => {
  assert.equal(report.get('interfaces'), 'lo', explain(result));
  expectResults(['list /sys/class/net'], ['ENOENT']);
});

test("no route out: loopback is the sandbox's own, 8.8.8.8 and the host's address are unreachable", () => {
  const port = (tcp.address() as AddressInfo).port;
  expectResults(['connect 127.0.0.1:6379', `connect 127.0.0.1:${port}`, `connect [::1]:${port}`], ['ECONNREFUSED']);
  expectResults(['connect 8.8.8.8:53', 'sendto udp 8.8.8.8:53'], ['ENETUNREACH']);
  if (hostIp) expectResults([`connect ${hostIp}:${port}`], ['ENETUNREACH']);
  assert.equal(tcpConnections, 0, `the host listener on port ${port} accepted ${tcpConnections} connection(s) from the sandbox`);
});

test("the host's abstract unix sockets are unreachable (they belong to the host network namespace)", () => {
  expectResults([`connect abstract unix @${abstractName}`], ['ECONNREFUSED']);
  assert.equal(abstractConnections, 0, 'the host abstract socket accepted a connection from the sandbox');
});

test('packet, raw, vsock and AF_ALG sockets are denied', () => {
  // The seccomp filter refuses socket families, types and protocols it does not allow with EAFNOSUPPORT.
  expectResults(['socket AF_PACKET', 'socket AF_VSOCK', 'socket AF_ALG', 'socket raw icmp'], ['EAFNOSUPPORT']);
});

test('mount, umount and remount are denied', () => {
  expectResults(['mount tmpfs /tmp', 'mount sysfs /tmp', 'mount cgroup /tmp', 'remount /usr/bin rw', 'umount /proc'], ['EPERM']);
});

test('new namespaces are denied: unshare, clone with CLONE_NEW*, clone3, setns', () => {
  expectResults(
    [
      'unshare CLONE_NEWUSER',
      'unshare CLONE_NEWNS',
      'unshare CLONE_NEWNET',
      'unshare CLONE_NEWPID',
      'clone CLONE_NEWNET',
      'clone CLONE_NEWUSER',
      'clone CLONE_NEWNS',
      'setns /proc/self/ns/net',
    ],
    ['EPERM'],
  );
  // clone3's flags live in memory seccomp cannot read: it is refused outright, so libc falls back to clone.
  expectResults(['clone3 CLONE_NEWUSER'], ['ENOSYS', 'EPERM']);
  expectResults(['open /proc/1/ns/mnt'], ['ENOENT', 'EACCES']);
});

test('ptrace (TRACEME and ATTACH to init) and process_vm_readv are denied', () => {
  expectResults(['ptrace PTRACE_TRACEME', 'ptrace PTRACE_ATTACH pid 1', 'process_vm_readv pid 1'], ['EPERM']);
});

test('becoming root is denied: setuid, setgid, setresuid, setgroups', () => {
  expectResults(['setuid 0', 'setgid 0', 'setresuid 0', 'setgroups'], ['EPERM']);
});

test('chroot, pivot_root, sethostname, signalling init and raising a hard rlimit are denied', () => {
  expectResults(['chroot /tmp', 'pivot_root', 'sethostname', 'kill pid 1', 'raise RLIMIT_NOFILE hard limit'], ['EPERM']);
});

test('exploit-prone kernel interfaces are denied: keyrings, bpf, perf, io_uring, userfaultfd, file handles, personality', () => {
  expectResults(
    [
      'keyctl get session keyring',
      'add_key',
      'bpf BPF_MAP_CREATE',
      'perf_event_open',
      'io_uring_setup',
      'userfaultfd',
      'open_by_handle_at',
      'personality ADDR_NO_RANDOMIZE',
    ],
    ['EPERM'],
  );
});

test('device nodes cannot be created; a FIFO, which is harmless, can', () => {
  expectResults(['mknod char 1:3', 'mknod block 254:0'], ['EPERM']);
  expectResults(['mknod fifo'], ['ok']);
});

test('the image is read-only: /usr, /etc and / cannot be written', () => {
  expectResults(
    [
      'write /usr/brig-probe',
      'write /usr/bin/brig-probe',
      'write /usr/bin/env',
      'write /etc/brig-probe',
      'write /etc/passwd',
      'write /brig-probe',
    ],
    ['EROFS', 'EACCES'],
  );
});

test('the sysrq trigger cannot be written', () => {
  // ENOENT: a kernel built without CONFIG_MAGIC_SYSRQ has none.
  expectResults(['write /proc/sysrq-trigger'], ['EACCES', 'EROFS', 'ENOENT']);
});

test('setuid bits are powerless: every mount is nosuid and a setuid-root binary of the image cannot mount', () => {
  for (const mount of ['/', '/box', '/tmp', '/dev/shm', '/usr/bin', '/usr/lib', '/dev']) {
    assert.match(report.get(`statvfs ${mount}`) ?? '', /^ok \(\w+ nosuid /, `${mount} honours setuid bits:\n${explain(result)}`);
  }
  for (const mount of ['/usr/bin', '/usr/lib']) assert.match(report.get(`statvfs ${mount}`) ?? '', /^ok \(ro /, explain(result));
  const mount = report.get('exec setuid-root /usr/bin/mount -t tmpfs') ?? '';
  assert.match(mount, /^exit [1-9]\d* /, `a setuid-root mount succeeded:\n${explain(result)}`);
});

test('kill(-1, SIGKILL) reaches only the sandbox: its own child dies, host processes of any uid survive', () => {
  expectResults(['kill -1 SIGKILL'], ['ok']);
  assert.equal(report.get('own child after kill -1'), 'killed', `kill(-1) did not even work inside:\n${explain(result)}`);
  for (const { uid, child } of hostSleepers) {
    assert.ok(child.pid !== undefined && isAlive(child.pid), `the host's sleep running as uid ${uid} was killed from inside the sandbox`);
  }
  for (const { child } of hostSleepers) child.kill('SIGKILL');
});

test('no host path is visible from inside: init is hidden from /proc, the mount table names no host folder', () => {
  expectResults(['read /proc/1/cmdline'], ['EACCES', 'EPERM', 'ENOENT']);
  const leaks = reportValues(result.stdout, 'mountinfo').filter((line) => line.includes(rt.stateDir));
  assert.deepEqual(leaks, [], `the mount table names the host state dir ${rt.stateDir}`);
});

test('afterwards nothing of the sandbox runs in the host and no process is left in its cgroups', () => {
  const sleeperPids = new Set(hostSleepers.map((s) => s.child.pid));
  const left = sandboxLeftovers(rt.config).filter((p) => !sleeperPids.has(p.pid));
  assert.deepEqual(left, [], 'sandbox processes still run in the host');
  assert.deepEqual(cgroupLeftovers(rt.config.cgroupParent), [], 'processes are left in the slot cgroups');
});

function listen(server: Server, options: { host: string; port: number } | { path: string }): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => resolve(server));
  });
}
