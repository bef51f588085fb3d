/**
 * A fake cgroup v2 filesystem in a temp dir, standing in for the kernel where
 * a plain directory tree cannot: mkdir populates a new cgroup's interface
 * files (its cgroup.controllers are what its parent enabled), rmdir refuses a
 * cgroup with processes or children, a write to cgroup.procs moves a process
 * (and what /proc/self/cgroup says, for Brig's own), a write to
 * cgroup.subtree_control follows v2's rules (ENOENT for a controller the
 * cgroup was not given, EBUSY for a non-root cgroup with processes: the
 * no-internal-process rule; no process joins a non-root cgroup that hands
 * controllers down), and tick() carries out cgroup.kill. Everything else the
 * code under test does is ordinary file I/O on this tree, through the same
 * files.ts as production.
 *
 * Fake pids are above PID_MAX_LIMIT (2^22), so no real process can have them;
 * FAKE_SELF_PID stands for Brig's own process.
 */
import fs from 'node:fs';
import os from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import type { CgroupDirOps } from '../../../../runtime/cgroups/files.ts';

export const FAKE_PIDS = [4_194_401, 4_194_402, 4_194_403];
export const FAKE_SELF_PID = 4_194_400;

export type FakePeakKind = 'resettable' | 'read-only' | 'absent';

export interface FakeCgroupfsOptions {
  peak?: FakePeakKind;
  /** The root's cgroup.subtree_control; default: memory, cpu, pids and io enabled, as systemd leaves a host. */
  rootSubtreeControl?: string;
  /**
   * The mount shows a cgroup namespace's root, as in a container: a non-root
   * cgroup to the kernel (it has cgroup.type and obeys the no-internal-process
   * rule), offered `namespaceControllers` by its parent outside.
   */
  namespaceRoot?: boolean;
  namespaceControllers?: string;
}

/** The order the kernel lists controllers in (by subsystem id). */
const KERNEL_ORDER = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];
const DEFAULT_ROOT_SUBTREE_CONTROL = 'cpu io memory pids\n';
const MEMORY_EVENTS = 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n';
const KILL_POLL_MS = 1;
const READ_ONLY_MODE = 0o444;
const PERMISSION_BITS = 0o777;
const OWNER_WRITE = 0o200;
const INIT_PID = 1;

function errno(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: fake cgroupfs, ${path}`), { code });
}

function names(text: string): string[] {
  return text.split(/\s+/).filter((name) => name.length > 0);
}

export class FakeCgroupfs {
  readonly base: string;
  /** The fake cgroup2 mount point. */
  readonly root: string;
  readonly mountinfoPath: string;
  /** The fake /proc/self/cgroup: where FAKE_SELF_PID is. */
  readonly procCgroupPath: string;
  peakKind: FakePeakKind;
  private timer?: NodeJS.Timeout;
  /** Cgroups that carry Brig's mark (a trusted xattr on a real cgroupfs, which needs root). */
  private readonly marked = new Set<string>();
  /** Other extended attributes, e.g. systemd's, by path and name. */
  private readonly xattrs = new Map<string, Map<string, string>>();
  /** Every write to cgroup.procs or cgroup.subtree_control, in order, as "<path> <value>". */
  readonly treeWrites: string[] = [];

  constructor(opts: FakeCgroupfsOptions = {}) {
    this.peakKind = opts.peak ?? 'resettable';
    this.base = fs.mkdtempSync(join(os.tmpdir(), 'brig-fake-cgroupfs-'));
    this.root = join(this.base, 'cgroup');
    fs.mkdirSync(this.root);
    if (opts.namespaceRoot) {
      this.populate(this.root, opts.namespaceControllers ?? 'cpu io memory pids\n');
      this.write(this.root, 'cgroup.procs', `${FAKE_SELF_PID}\n`);
    } else {
      this.write(this.root, 'cgroup.controllers', 'cpuset cpu io memory hugetlb pids rdma misc\n');
      this.write(this.root, 'cgroup.subtree_control', opts.rootSubtreeControl ?? DEFAULT_ROOT_SUBTREE_CONTROL);
      this.write(this.root, 'cgroup.procs', `${INIT_PID}\n`);
    }
    this.procCgroupPath = join(this.base, 'proc-self-cgroup');
    fs.writeFileSync(this.procCgroupPath, '0::/\n');
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

  /** What the kernel does for the operations that change the tree. */
  readonly dirOps: CgroupDirOps = {
    mark: (path) => {
      this.marked.add(path);
    },
    isMarked: (path) => this.marked.has(path),
    makeDir: (path) => {
      fs.mkdirSync(path);
      this.populate(path, this.read(dirname(path), 'cgroup.subtree_control'));
    },
    removeDir: (path) => {
      if (!fs.existsSync(path)) throw errno('ENOENT', path);
      const hasChildren = fs.readdirSync(path, { withFileTypes: true }).some((entry) => entry.isDirectory());
      if (hasChildren || this.read(path, 'cgroup.procs').trim() !== '') throw errno('EBUSY', path);
      fs.rmSync(path, { recursive: true });
      this.marked.delete(path);
    },
    writeTreeFile: (path, value) => {
      this.treeWrites.push(`${path} ${value}`);
      const dir = dirname(path);
      if (!fs.existsSync(dir)) throw errno('ENOENT', path);
      if (basename(path) === 'cgroup.procs') this.moveProcess(dir, value, path);
      else if (basename(path) === 'cgroup.subtree_control') this.changeSubtreeControl(dir, value, path);
      else fs.writeFileSync(path, value);
    },
    readXattr: (path, name) => this.xattrs.get(path)?.get(name),
  };

  /** A cgroup made behind Brig's back (an earlier process, another tool, systemd). */
  makeCgroup(path: string, pids: number[] = []): void {
    this.dirOps.makeDir(path);
    this.write(path, 'cgroup.procs', pids.map((pid) => `${pid}\n`).join(''));
  }

  /** An inner cgroup that hands its controllers down, as systemd makes a slice: no processes, subtree_control set. */
  makeSlice(path: string): void {
    this.makeCgroup(path);
    this.write(path, 'cgroup.subtree_control', this.read(path, 'cgroup.controllers'));
  }

  /** Brig's process starts in `cgroupPath` (as /proc/self/cgroup shows it), with `others` beside it: as systemd starts a service. */
  startIn(cgroupPath: string, others: number[] = []): string {
    const dir = cgroupPath === '/' ? this.root : join(this.root, cgroupPath);
    if (!fs.existsSync(dir)) this.makeCgroup(dir);
    this.removeFromTree(FAKE_SELF_PID);
    this.write(dir, 'cgroup.procs', [FAKE_SELF_PID, ...others].map((pid) => `${pid}\n`).join(''));
    fs.writeFileSync(this.procCgroupPath, `0::${cgroupPath}\n`);
    return dir;
  }

  /** Sets an extended attribute on a cgroup, as systemd does on its units' (trusted.invocation_id, trusted.delegate). */
  setXattr(path: string, name: string, value: string): void {
    const attributes = this.xattrs.get(path) ?? new Map<string, string>();
    attributes.set(name, value);
    this.xattrs.set(path, attributes);
  }

  isMarked(path: string): boolean {
    return this.marked.has(path);
  }

  /** The pids listed in a cgroup's cgroup.procs. */
  pids(dir: string): number[] {
    return names(this.read(dir, 'cgroup.procs')).map(Number);
  }

  /** What /proc/self/cgroup says now. */
  ownCgroup(): string {
    return fs.readFileSync(this.procCgroupPath, 'utf8').trim();
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

  /** Every cgroup but the hierarchy's root has cgroup.type (a namespace root too). */
  private isRoot(dir: string): boolean {
    return !fs.existsSync(join(dir, 'cgroup.type'));
  }

  private allCgroups(dir: string = this.root): string[] {
    const children = fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !entry.isSymbolicLink())
      .flatMap((entry) => this.allCgroups(join(dir, entry.name)));
    return [dir, ...children];
  }

  /** Takes the pid out of whichever cgroup lists it; false when none does (no such process). */
  private removeFromTree(pid: number): boolean {
    for (const dir of this.allCgroups()) {
      const pids = this.pids(dir);
      if (!pids.includes(pid)) continue;
      this.write(
        dir,
        'cgroup.procs',
        pids
          .filter((listed) => listed !== pid)
          .map((listed) => `${listed}\n`)
          .join(''),
      );
      return true;
    }
    return false;
  }

  private moveProcess(dir: string, value: string, path: string): void {
    const pid = Number(value.trim());
    if (!Number.isInteger(pid) || pid <= 0) throw errno('EINVAL', path);
    if (!this.isRoot(dir) && names(this.read(dir, 'cgroup.subtree_control')).length > 0) throw errno('EBUSY', path);
    if (!this.removeFromTree(pid)) throw errno('ESRCH', path);
    this.write(dir, 'cgroup.procs', `${this.read(dir, 'cgroup.procs')}${pid}\n`);
    if (pid === FAKE_SELF_PID) {
      const inNamespace = relative(this.root, dir);
      fs.writeFileSync(this.procCgroupPath, `0::/${inNamespace}\n`);
    }
  }

  private changeSubtreeControl(dir: string, value: string, path: string): void {
    const available = names(this.read(dir, 'cgroup.controllers'));
    const enabled = new Set(names(this.read(dir, 'cgroup.subtree_control')));
    let enabling = false;
    for (const token of names(value)) {
      const controller = token.slice(1);
      if (!available.includes(controller)) throw errno('ENOENT', path);
      if (token.startsWith('+')) {
        enabled.add(controller);
        enabling = true;
      } else if (token.startsWith('-')) enabled.delete(controller);
      else throw errno('EINVAL', path);
    }
    if (enabling && !this.isRoot(dir) && this.read(dir, 'cgroup.procs').trim() !== '') throw errno('EBUSY', path);
    const list = `${KERNEL_ORDER.filter((controller) => enabled.has(controller)).join(' ')}\n`;
    this.write(dir, 'cgroup.subtree_control', list);
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) this.write(join(dir, entry.name), 'cgroup.controllers', list);
    }
  }

  private populate(dir: string, controllers: string): void {
    const files: Record<string, string> = {
      'cgroup.type': 'domain\n',
      'cgroup.procs': '',
      'cgroup.kill': '',
      'cgroup.subtree_control': '',
      'cgroup.controllers': `${names(controllers).join(' ')}\n`,
      'memory.max': 'max\n',
      'memory.swap.max': 'max\n',
      'memory.oom.group': '0\n',
      'memory.current': '0\n',
      'memory.events': MEMORY_EVENTS,
      'memory.events.local': MEMORY_EVENTS,
      'memory.stat': 'anon 0\nfile 0\nkernel 0\nkernel_stack 0\nslab 0\n',
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
