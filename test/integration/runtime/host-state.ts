/**
 * What a sandbox may have left in the host: processes running as a slot's
 * host uids, cgroup directories, mounts. Read straight from /proc and
 * /sys/fs/cgroup, not through the runtime, so a runtime bug cannot hide itself.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeConfig } from '../../../runtime/config.ts';
import { IDS_PER_SLOT } from '../../../runtime/slots/lease.ts';
import { libcLibrary } from '../../../runtime/system/libc.ts';

const CGROUP_V1_ROOT = '/sys/fs/cgroup';

export interface HostProcess {
  pid: number;
  uids: number[];
  name: string;
  /** The State: letter, e.g. S, R, or Z for a zombie (dead, not yet reaped by its parent). */
  state: string;
}

/** Every host uid the runtime's slots may run sandboxes as (inner root and inner user of each slot). */
export function slotHostUids(config: Pick<RuntimeConfig, 'uidBase' | 'slots'>): number[] {
  return Array.from({ length: config.slots * IDS_PER_SLOT }, (_, i) => config.uidBase + i);
}

/** Host processes whose real, effective, saved or fs uid is one of `uids`. */
export function hostProcessesOwnedBy(uids: readonly number[]): HostProcess[] {
  const wanted = new Set(uids);
  const found: HostProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${entry}/status`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    const processUids = (/^Uid:\s+(.*)$/m.exec(status)?.[1] ?? '').split(/\s+/).map(Number);
    if (processUids.some((uid) => wanted.has(uid))) {
      found.push({
        pid: Number(entry),
        uids: processUids,
        name: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?',
        state: /^State:\s+(\S+)/m.exec(status)?.[1] ?? '?',
      });
    }
  }
  return found;
}

/** `<hierarchy>/<parent>` and every cgroup below it, in every hierarchy mounted under /sys/fs/cgroup. */
export function cgroupDirsUnder(parentName: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    found.push(dir);
    for (const entry of readdirSync(dir)) {
      const child = join(dir, entry);
      if (statSync(child).isDirectory()) walk(child);
    }
  };
  for (const hierarchy of readdirSync(CGROUP_V1_ROOT)) {
    const parent = join(CGROUP_V1_ROOT, hierarchy, parentName);
    if (existsSync(parent) && statSync(parent).isDirectory()) walk(parent);
  }
  return found;
}

/** Slot cgroups (children of the parent) in the pids hierarchy. */
export function slotPidsCgroups(parentName: string): string[] {
  const parent = join(CGROUP_V1_ROOT, 'pids', parentName);
  if (!existsSync(parent)) return [];
  return readdirSync(parent)
    .map((name) => join(parent, name))
    .filter((dir) => statSync(dir).isDirectory());
}

/**
 * The most tasks (processes and threads) any slot cgroup holds right now,
 * counted from its tasks file. Not pids.current: a fork that the limit
 * refuses is charged and reverted, so that counter can read over pids.max
 * for an instant while nothing is over.
 */
export function maxSlotTasks(parentName: string): number {
  let max = 0;
  for (const dir of slotPidsCgroups(parentName)) {
    try {
      max = Math.max(max, readFileSync(join(dir, 'tasks'), 'utf8').split('\n').filter(Boolean).length);
    } catch {
      // the slot cgroup was removed meanwhile
    }
  }
  return max;
}

/** Processes listed in any cgroup.procs below the parent. */
export function processesInCgroups(parentName: string): number[] {
  return cgroupDirsUnder(parentName).flatMap((dir) => {
    try {
      return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/**
 * Host processes running as one of `uids`, zombies left out: a zombie runs
 * nothing, it only waits for its parent to reap it. When a launcher is killed
 * outright (one test does it), the sandbox's init is reparented to the host's
 * pid 1 and stays a zombie until that reaps it, which some hosts do lazily.
 */
export function liveHostProcessesOwnedBy(uids: readonly number[]): HostProcess[] {
  return hostProcessesOwnedBy(uids).filter((p) => p.state !== 'Z');
}

/** Lines of the host's mount table naming `path`. */
export function mountsNaming(path: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(path));
}

/** Live children of `parentPid` whose command name is `name`. */
export function childProcessesNamed(parentPid: number, name: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return stat.startsWith(`${pid} (${name})`) && Number(ppid) === parentPid && state !== 'Z';
      } catch {
        return false; // exited while we looked
      }
    });
}

/** Children of `pid`, from /proc/<pid>/task/<tid>/children over its threads. */
export function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return []; // exited while we looked
  }
}

/** The command name of `pid` (from /proc/<pid>/stat), or null once it is gone. */
function commandName(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  } catch {
    return null;
  }
}

/** A process forked by the launcher that has not exec'd anything yet: init, or a program process still waiting to start. */
const notExecd = (pid: number) => commandName(pid) === 'brig-launcher';

/**
 * Sandboxes prepared ahead (warm slots) by launchers that `parentPid`
 * started, by their inits: init is there and no program is (init has no
 * child that exec'd anything). A launcher killed
 * from outside is not `parentPid`'s child any more: its init, if it
 * survived, is not counted here.
 */
export function waitingInits(parentPid: number = process.pid): Set<number> {
  const inits = childProcessesNamed(parentPid, 'brig-launcher').flatMap(childrenOf);
  return new Set(inits.filter((init) => isAlive(init) && childrenOf(init).every(notExecd)));
}

/**
 * Every process of the sandboxes being prepared or waiting: their launchers
 * (which run as the slot's root id for a moment, to create the namespaces),
 * inits, and a program process not yet exec'd. Each launcher is judged from
 * one look at its own tree, so a sandbox that grows while we look (a refill
 * cloning its init) is still told apart from a run's leftovers.
 */
export function preparedSandboxProcesses(parentPid: number = process.pid): Set<number> {
  const processes = new Set<number>();
  for (const launcher of childProcessesNamed(parentPid, 'brig-launcher')) {
    const inits = childrenOf(launcher);
    const forked = inits.flatMap(childrenOf);
    if (!forked.every(notExecd)) continue; // runs a program
    for (const pid of [launcher, ...inits, ...forked]) processes.add(pid);
  }
  return processes;
}

/** The launcher (a child of `parentPid`) whose sandbox runs a program now: its init has a child that exec'd. */
export function launcherRunningAProgram(parentPid: number = process.pid): number | undefined {
  return childProcessesNamed(parentPid, 'brig-launcher').find((launcher) =>
    childrenOf(launcher).some((init) => childrenOf(init).some((child) => !notExecd(child))),
  );
}

/**
 * Processes of the slots' host uids that are not a prepared sandbox waiting
 * for its step: what a finished run may have left behind.
 */
export function sandboxLeftovers(config: Pick<RuntimeConfig, 'uidBase' | 'slots'>): HostProcess[] {
  // Listed first, then told apart: a prepared sandbox's process seen in the
  // list is in the later look at the launchers' trees too.
  const live = liveHostProcessesOwnedBy(slotHostUids(config));
  const waiting = preparedSandboxProcesses();
  return live.filter((p) => !waiting.has(p.pid) && isAlive(p.pid));
}

/** Processes in the slot cgroups that are not part of a prepared sandbox. */
export function cgroupLeftovers(parentName: string): number[] {
  const live = processesInCgroups(parentName);
  const waiting = preparedSandboxProcesses();
  return live.filter((pid) => !waiting.has(pid) && isAlive(pid));
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export const CAP_SYS_RESOURCE = 24;

/** Whether this (root) test process holds a capability in its effective set; some hosts drop a few even for root. */
export function hostRootHolds(capability: number): boolean {
  const effective = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return ((BigInt(`0x${effective}`) >> BigInt(capability)) & 1n) === 1n;
}

/** Open inotify instances (fds of anon_inode:inotify) held by each of these processes, summed. */
export function inotifyInstancesHeldBy(pids: readonly number[]): number {
  let held = 0;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited while we looked
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify') held++;
      } catch {
        // closed while we looked
      }
    }
  }
  return held;
}

/** _IO(NSIO, 0x4) from linux/nsfs.h: the owner of a user namespace, as a uid of the caller's namespace. */
const NS_GET_OWNER_UID = 0xb704;
let ioctlOwner: ((fd: number, request: number, owner: number[]) => number) | undefined;

/** The host uid that owns the user namespace process `pid` lives in (ioctl NS_GET_OWNER_UID). */
export function userNamespaceOwner(pid: number): number {
  ioctlOwner ??= libcLibrary().func('int ioctl(int fd, unsigned long request, _Out_ uint32_t *owner)');
  const fd = openSync(`/proc/${pid}/ns/user`, 'r');
  try {
    const owner = [0];
    if (ioctlOwner!(fd, NS_GET_OWNER_UID, owner) !== 0) throw new Error(`ioctl NS_GET_OWNER_UID on /proc/${pid}/ns/user failed`);
    return owner[0]!;
  } finally {
    closeSync(fd);
  }
}
