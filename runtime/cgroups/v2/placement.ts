/**
 * Where Brig builds its cgroups on v2: inside the cgroup it was started in,
 * never beside it. That is what both ways of handing Brig a cgroup expect:
 * systemd's Delegate=yes gives a service its own cgroup and everything below
 * it ("use the cgroup you are started in, and everything below it", systemd's
 * CGROUP_DELEGATION.md), and a container's cgroup namespace shows the
 * container's cgroup as `/`. A tree built at the top of the hierarchy instead
 * would sit outside the unit or container: its limits, accounting and stop
 * would miss every sandbox.
 *
 *   <base>/init                    the processes of Brig's service (not at the root)
 *   <base>/<parentName>            Brig's parent, marked as Brig's
 *   <base>/<parentName>/slot-N     one per sandbox slot
 *
 * <base> is the cgroup Brig's process runs in, unless that is the `init`
 * leaf its service's processes were already moved into (by another Brig
 * process of the same service, which moved this one along, or by
 * deploy/entrypoint.sh in a container); then it is that leaf's parent.
 *
 * This file only reads; delegation.ts takes the place into use.
 */
import { basename, dirname, join } from 'node:path';
import { HostError } from '../../errors.ts';
import { type CgroupDirOps, isCreatedByBrig, pathExists, readText } from '../files.ts';
import type { CgroupMount } from '../mountinfo.ts';

/** The leaf that holds the service's own processes; deploy/entrypoint.sh uses the same name. */
export const PROCESS_LEAF_NAME = 'init';
export const DEFAULT_PROC_CGROUP_PATH = '/proc/self/cgroup';

/** The unified hierarchy's line in /proc/<pid>/cgroup: hierarchy id 0 and no controller list (cgroups(7)). */
const UNIFIED_LINE_PREFIX = '0::';

export interface V2Placement {
  /** The cgroup2 mount everything below is reached through. */
  mountPoint: string;
  /** The cgroup Brig's process is in, as /proc/self/cgroup says. */
  ownCgroup: string;
  /** Where Brig builds: its own cgroup, or the parent of the `init` leaf it was moved into. */
  base: string;
  /**
   * The hierarchy's real root, exempt from v2's no-internal-process rule. A
   * cgroup namespace's root is not: it is an ordinary cgroup to the kernel.
   */
  baseIsRoot: boolean;
  /** `<base>/init`, where the base's processes go before it can hand controllers down; none at the root. */
  processLeaf?: string;
  /** `<base>/<parentName>`. */
  parent: string;
}

export interface LocateV2Options {
  mount: CgroupMount;
  parentName: string;
  procCgroupPath: string;
  dirOps: CgroupDirOps;
}

export function locateV2(opts: LocateV2Options): V2Placement {
  const { mount, dirOps } = opts;
  const ownCgroup = underMount(readOwnCgroupPath(opts.procCgroupPath), mount);
  const base = isProcessLeaf(ownCgroup, mount.mountPoint, dirOps) ? dirname(ownCgroup) : ownCgroup;
  const baseIsRoot = isHierarchyRoot(base);
  return {
    mountPoint: mount.mountPoint,
    ownCgroup,
    base,
    baseIsRoot,
    processLeaf: baseIsRoot ? undefined : join(base, PROCESS_LEAF_NAME),
    parent: join(base, opts.parentName),
  };
}

/**
 * The kernel gives every cgroup but the hierarchy's root a cgroup.type file
 * (it is declared CFTYPE_NOT_ON_ROOT, present since 4.14, before v2 had a cpu
 * controller). A cgroup namespace's root has one: namespaces change what a
 * process sees, not which cgroup the rule applies to.
 */
export function isHierarchyRoot(dir: string): boolean {
  return !pathExists(`${dir}/cgroup.type`);
}

/** The path of the "0::/path" line, relative to this process's cgroup namespace root. */
export function readOwnCgroupPath(procCgroupPath: string): string {
  const line = readText(procCgroupPath)
    .split('\n')
    .find((entry) => entry.startsWith(UNIFIED_LINE_PREFIX));
  if (line === undefined) {
    throw new HostError(
      'cgroup_placement_unknown',
      `${procCgroupPath} has no cgroup v2 line ("0::/path"): the kernel does not put this process in the unified hierarchy, so Brig cannot tell where to build; use cgroup v1 (BRIG_CGROUP_VERSION=1) or a unified host`,
    );
  }
  const path = line.slice(UNIFIED_LINE_PREFIX.length).trim();
  // A process moved out of its cgroup namespace's subtree sees its cgroup as /../x.
  if (!path.startsWith('/') || path.split('/').includes('..')) {
    throw new HostError(
      'cgroup_placement_unknown',
      `the cgroup Brig runs in, "${path}" (${procCgroupPath}), lies outside its cgroup namespace: start Brig inside the namespace's own tree`,
    );
  }
  return path;
}

/** The directory of a cgroup (a path from /proc/self/cgroup) under the mount, which shows `mount.root` at its mount point. */
function underMount(cgroupPath: string, mount: CgroupMount): string {
  const mountRoot = mount.root === '/' ? '' : mount.root;
  if (cgroupPath !== mount.root && !cgroupPath.startsWith(`${mountRoot}/`)) {
    throw new HostError(
      'cgroup_placement_unknown',
      `the cgroup Brig runs in, ${cgroupPath}, is not under the cgroup2 mount at ${mount.mountPoint} (which shows ${mount.root}): Brig must see its own cgroup through the mount. In a cgroup namespace, mount cgroup2 anew inside it (with its own mount namespace: mount -t cgroup2 cgroup2 ${mount.mountPoint}), as container engines do`,
    );
  }
  const relative = cgroupPath.slice(mountRoot.length);
  return relative === '' || relative === '/' ? mount.mountPoint : join(mount.mountPoint, relative);
}

/**
 * Is the cgroup Brig runs in the leaf its service's processes were moved
 * into? It is when it is named `init` and either carries Brig's mark (another
 * Brig process made it) or sits right under a cgroup namespace's root (or a
 * bind-mounted subtree's), where deploy/entrypoint.sh makes it. A cgroup
 * merely named `init` anywhere else is not taken for one: its parent is
 * nobody's to hand to Brig.
 */
function isProcessLeaf(ownCgroup: string, mountPoint: string, dirOps: CgroupDirOps): boolean {
  if (ownCgroup === mountPoint || basename(ownCgroup) !== PROCESS_LEAF_NAME) return false;
  if (isCreatedByBrig(dirOps, ownCgroup)) return true;
  return dirname(ownCgroup) === mountPoint && !isHierarchyRoot(mountPoint);
}
