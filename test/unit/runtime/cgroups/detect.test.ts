/**
 * detectCgroups() on fake mountinfo files: which version it picks, where it
 * finds v1 controllers (separate or co-mounted), and how it fails.
 */

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CgroupDirOps } from '../../../../runtime/cgroups/files.ts';
import { detectCgroups } from '../../../../runtime/cgroups/manager.ts';
import { parseCgroupMounts } from '../../../../runtime/cgroups/mountinfo.ts';
import { ConfigError, HostError } from '../../../../runtime/errors.ts';

/** Cgroups the stand-in marked as Brig's (a trusted xattr on cgroupfs, which needs root). */
const marked = new Set<string>();

/** A plain-directory stand-in for cgroupfs: enough for mkdir, cgroup.procs reads, rmdir and Brig's mark. */
const plainDirOps: CgroupDirOps = {
  mark: (path) => {
    marked.add(path);
  },
  isMarked: (path) => marked.has(path),
  makeDir: (path) => {
    fs.mkdirSync(path);
    fs.writeFileSync(join(path, 'cgroup.procs'), '');
  },
  removeDir: (path) => {
    if (!fs.existsSync(path)) throw Object.assign(new Error(path), { code: 'ENOENT' });
    fs.rmSync(path, { recursive: true });
  },
  writeTreeFile: (path, value) => fs.writeFileSync(path, value),
  readXattr: () => undefined,
};

function cgroupLine(id: number, mountPoint: string, superOptions: string): string {
  const escaped = mountPoint.replace(/ /g, '\\040');
  return `${id} 31 0:${id} / ${escaped} rw,nosuid,nodev,noexec,relatime shared:${id} - cgroup cgroup rw,${superOptions}`;
}

function cgroup2Line(id: number, mountPoint: string): string {
  return `${id} 23 0:${id} / ${mountPoint} rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate`;
}

/** A temp dir holding mount point dirs and a mountinfo file listing them. */
function fakeHost(
  t: { after(fn: () => void): void },
  lines: (base: string) => string[],
  controllers: Record<string, string> = {},
): { base: string; mountinfoPath: string } {
  const base = fs.mkdtempSync(join(os.tmpdir(), 'brig-detect-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const mountinfoPath = join(base, 'mountinfo');
  const text = `${lines(base).join('\n')}\n`;
  fs.writeFileSync(mountinfoPath, text);
  for (const mount of parseCgroupMounts(text)) fs.mkdirSync(mount.mountPoint, { recursive: true });
  for (const [mountPoint, list] of Object.entries(controllers)) fs.writeFileSync(join(base, mountPoint, 'cgroup.controllers'), list);
  return { base, mountinfoPath };
}

const v1Lines =
  (cpuMount: string[]) =>
  (base: string): string[] => [
    '22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw',
    cgroup2Line(41, join(base, 'unified')),
    ...cpuMount.map((line) => line.replace('$BASE', base)),
    cgroupLine(35, join(base, 'memory'), 'memory'),
    cgroupLine(39, join(base, 'pids here'), 'pids'),
    cgroupLine(40, join(base, 'systemd'), 'xattr,name=systemd'),
  ];

test('v1 with cpu and cpuacct co-mounted: one directory for both, mount points from mountinfo', (t) => {
  const { base, mountinfoPath } = fakeHost(t, v1Lines([cgroupLine(32, '$BASE/cpu,cpuacct', 'cpu,cpuacct')]), { unified: '' });
  const manager = detectCgroups({ root: join(base, 'unified'), mountinfoPath, parentName: 'brig-test', dirOps: plainDirOps });
  assert.equal(manager.version, 1);
  manager.ensureParent();
  const cgroup = manager.open('slot-0');
  assert.deepEqual(cgroup.dirs, [
    join(base, 'memory', 'brig-test', 'slot-0'),
    join(base, 'cpu,cpuacct', 'brig-test', 'slot-0'),
    join(base, 'pids here', 'brig-test', 'slot-0'),
  ]);
  for (const dir of cgroup.dirs) assert.equal(fs.statSync(dir).isDirectory(), true);
});

test('v1 with separate cpu and cpuacct hierarchies: four directories', (t) => {
  const { base, mountinfoPath } = fakeHost(t, v1Lines([cgroupLine(32, '$BASE/cpu', 'cpu'), cgroupLine(33, '$BASE/cpuacct', 'cpuacct')]), {
    unified: '',
  });
  const manager = detectCgroups({ mountinfoPath, dirOps: plainDirOps });
  manager.ensureParent();
  const cgroup = manager.open('slot-0');
  assert.deepEqual(
    cgroup.dirs,
    ['memory', 'cpu', 'cpuacct', 'pids here'].map((mount) => join(base, mount, 'brig', 'slot-0')),
  );
});

test('v1 sweep and destroy remove the directories in every hierarchy', async (t) => {
  const { base, mountinfoPath } = fakeHost(t, v1Lines([cgroupLine(32, '$BASE/cpu,cpuacct', 'cpu,cpuacct')]));
  const manager = detectCgroups({ mountinfoPath, dirOps: plainDirOps });
  manager.ensureParent();
  const live = manager.open('slot-live');
  manager.open('slot-dead');
  fs.mkdirSync(join(base, 'memory', 'brig', 'slot-half'));
  fs.writeFileSync(join(base, 'memory', 'brig', 'slot-half', 'cgroup.procs'), '');

  assert.deepEqual(await manager.sweep((name) => name === 'slot-live'), ['slot-dead', 'slot-half']);
  for (const mount of ['memory', 'cpu,cpuacct', 'pids here']) {
    const children = fs.readdirSync(join(base, mount, 'brig'), { withFileTypes: true }).filter((entry) => entry.isDirectory());
    assert.deepEqual(
      children.map((entry) => entry.name),
      ['slot-live'],
      mount,
    );
  }
  await live.destroy();
  await live.destroy();
  for (const dir of live.dirs) assert.equal(fs.existsSync(dir), false);
});

test('a cgroup2 mount with every controller wins over v1', (t) => {
  const { base, mountinfoPath } = fakeHost(t, v1Lines([cgroupLine(32, '$BASE/cpu,cpuacct', 'cpu,cpuacct')]), {
    unified: 'cpu io memory pids\n',
  });
  assert.equal(detectCgroups({ root: join(base, 'unified'), mountinfoPath }).version, 2);
  assert.equal(detectCgroups({ root: join(base, 'unified'), mountinfoPath, version: 1 }).version, 1, 'a forced version is obeyed');
});

test('the preferred root is chosen among several usable cgroup2 mounts', (t) => {
  const { base, mountinfoPath } = fakeHost(t, (b) => [cgroup2Line(1, join(b, 'first')), cgroup2Line(2, join(b, 'second'))], {
    first: 'memory cpu pids',
    second: 'memory cpu pids',
  });
  const manager = detectCgroups({ root: join(base, 'second'), mountinfoPath });
  assert.equal((manager as unknown as { root: string }).root, join(base, 'second'));
});

test('no usable hierarchy is a HostError that says what is missing', (t) => {
  const { base, mountinfoPath } = fakeHost(t, (b) => [cgroup2Line(41, join(b, 'unified')), cgroupLine(35, join(b, 'memory'), 'memory')], {
    unified: '',
  });
  assert.throws(
    () => detectCgroups({ root: join(base, 'unified'), mountinfoPath }),
    (err: unknown) => {
      assert.ok(err instanceof HostError);
      assert.equal(err.code, 'cgroup_unavailable');
      assert.match(err.message, /lacks the memory, cpu, pids controller/);
      assert.match(err.message, /v1 lacks the cpu, cpuacct, pids controller/);
      return true;
    },
  );
  const v1Only = fakeHost(t, v1Lines([cgroupLine(32, '$BASE/cpu,cpuacct', 'cpu,cpuacct')]), { unified: '' });
  assert.throws(() => detectCgroups({ mountinfoPath: v1Only.mountinfoPath, version: 2 }), { code: 'cgroup_unavailable' });
  assert.throws(() => detectCgroups({ mountinfoPath: join(base, 'missing') }), HostError);
});

test('a parent name that is not one path component is a ConfigError', () => {
  assert.throws(() => detectCgroups({ parentName: '../etc' }), ConfigError);
});

test('mountinfo parsing decodes escapes and skips non-cgroup mounts', () => {
  const mounts = parseCgroupMounts(
    [
      '22 1 0:21 / /proc rw - proc proc rw',
      '32 31 0:29 / /sys/fs/cgroup/cpu\\040x rw,relatime shared:1 master:2 - cgroup cgroup rw,cpu,cpuacct',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n'),
  );
  assert.deepEqual(mounts, [
    { mountPoint: '/sys/fs/cgroup/cpu x', root: '/', fsType: 'cgroup', superOptions: ['rw', 'cpu', 'cpuacct'] },
    { mountPoint: '/sys/fs/cgroup/unified', root: '/', fsType: 'cgroup2', superOptions: ['rw'] },
  ]);
});
