/**
 * A fake cgroup v2 filesystem in a temp dir, standing in for the kernel where
 * a plain directory tree cannot: mkdir populates a new cgroup's interface
 * files, rmdir refuses a cgroup with processes or children, and tick() carries
 * out cgroup.kill. Everything else the code under test does is ordinary file
 * I/O on this tree, through the same files.ts as production.
 *
 * Fake pids are above PID_MAX_LIMIT (2^22), so no real process can have them.
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { CgroupDirOps } from '../../../../runtime/cgroups/files.ts';

export const FAKE_PIDS = [4_194_401, 4_194_402, 4_194_403];

export type FakePeakKind = 'resettable' | 'read-only' | 'absent';

const MEMORY_EVENTS = 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n';
const KILL_POLL_MS = 1;
const READ_ONLY_MODE = 0o444;
const PERMISSION_BITS = 0o777;
const OWNER_WRITE = 0o200;

function errno(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: fake cgroupfs, ${path}`), { code });
}

export class FakeCgroupfs {
  readonly base: string;
  /** The fake cgroup2 mount point. */
  readonly root: string;
  readonly mountinfoPath: string;
  peakKind: FakePeakKind;
  private timer?: NodeJS.Timeout;

  constructor(opts: { peak?: FakePeakKind; rootSubtreeControl?: string } = {}) {
    this.peakKind = opts.peak ?? 'resettable';
    this.base = fs.mkdtempSync(join(os.tmpdir(), 'brig-fake-cgroupfs-'));
    this.root = join(this.base, 'cgroup');
    fs.mkdirSync(this.root);
    this.write(this.root, 'cgroup.controllers', 'cpuset cpu io memory hugetlb pids rdma misc\n');
    this.write(this.root, 'cgroup.subtree_control', opts.rootSubtreeControl ?? '');
    this.write(this.root, 'cgroup.procs', '1\n');
    this.mountinfoPath = join(this.base, 'mountinfo');
    fs.writeFileSync(
      this.mountinfoPath,
      [
        '22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw',
        `31 23 0:28 / ${this.root} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot`,
        '',
      ].join('\n'),
    );
  }

  /** Cgroups that carry Brig's mark (a trusted xattr on a real cgroupfs, which needs root). */
  private readonly marked = new Set<string>();

  /** What the kernel does on mkdir in cgroupfs: the new cgroup comes with its interface files. */
  readonly dirOps: CgroupDirOps = {
    mark: (path) => {
      this.marked.add(path);
    },
    isMarked: (path) => this.marked.has(path),
    makeDir: (path) => {
      fs.mkdirSync(path);
      this.populate(path);
    },
    removeDir: (path) => {
      if (!fs.existsSync(path)) throw errno('ENOENT', path);
      const hasChildren = fs.readdirSync(path, { withFileTypes: true }).some((entry) => entry.isDirectory());
      if (hasChildren || this.read(path, 'cgroup.procs').trim() !== '') throw errno('EBUSY', path);
      fs.rmSync(path, { recursive: true });
      this.marked.delete(path);
    },
  };

  /** A cgroup made behind Brig's back (an earlier process, another tool). */
  makeCgroup(path: string, pids: number[] = []): void {
    this.dirOps.makeDir(path);
    this.write(path, 'cgroup.procs', pids.map((pid) => `${pid}\n`).join(''));
  }

  read(dir: string, file: string): string {
    return fs.readFileSync(join(dir, file), 'utf8');
  }

  /** What the kernel reports (a counter moving), so a read-only interface file is written too, as root could. */
  write(dir: string, file: string, value: string): void {
    const path = join(dir, file);
    const mode = fs.existsSync(path) ? fs.statSync(path).mode & PERMISSION_BITS : undefined;
    if (mode !== undefined && (mode & OWNER_WRITE) === 0) fs.chmodSync(path, mode | OWNER_WRITE);
    fs.writeFileSync(path, value);
    if (mode !== undefined && (mode & OWNER_WRITE) === 0) fs.chmodSync(path, mode);
  }

  /** The kernel's answer to a write on a memory.peak fd: the watermark restarts at memory.current. */
  resetPeak(dir: string): void {
    this.write(dir, 'memory.peak', this.read(dir, 'memory.current'));
  }

  /** Carry out pending cgroup.kill writes: the cgroup and its descendants lose their processes. */
  tick(): void {
    const visit = (dir: string, killing: boolean): void => {
      const kill = killing || (fs.existsSync(join(dir, 'cgroup.kill')) && this.read(dir, 'cgroup.kill').trim() === '1');
      if (kill) {
        this.write(dir, 'cgroup.procs', '');
        this.write(dir, 'cgroup.kill', '');
      }
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) visit(join(dir, entry.name), kill);
      }
    };
    visit(this.root, false);
  }

  startKernel(): void {
    this.timer ??= setInterval(() => this.tick(), KILL_POLL_MS);
  }

  stopKernel(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  cleanup(): void {
    this.stopKernel();
    fs.rmSync(this.base, { recursive: true, force: true });
  }

  private populate(dir: string): void {
    const files: Record<string, string> = {
      'cgroup.procs': '',
      'cgroup.kill': '',
      'cgroup.subtree_control': '',
      'cgroup.controllers': 'cpu memory pids\n',
      'memory.max': 'max\n',
      'memory.swap.max': 'max\n',
      'memory.oom.group': '0\n',
      'memory.current': '0\n',
      'memory.events': MEMORY_EVENTS,
      'memory.events.local': MEMORY_EVENTS,
      'cpu.max': 'max 100000\n',
      'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n',
      'pids.max': 'max\n',
      'pids.current': '0\n',
    };
    if (this.peakKind !== 'absent') files['memory.peak'] = '0\n';
    for (const [name, value] of Object.entries(files)) this.write(dir, name, value);
    // kernfs shows a file without a write handler as read-only, which is how old kernels' memory.peak looks.
    if (this.peakKind === 'read-only') fs.chmodSync(join(dir, 'memory.peak'), READ_ONLY_MODE);
  }
}
