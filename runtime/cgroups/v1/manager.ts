/**
 * cgroup v1: one hierarchy per controller (or per co-mounted group), found in
 * mountinfo. Brig's parent is a directory named parentName at the top of each
 * of them, not inside the cgroup Brig runs in as on v2: v1 has no delegation
 * model for controllers (the kernel's rules for a less privileged writer are
 * v2's; systemd delegates v1 controller hierarchies to nobody, "not safe" in
 * its CGROUP_DELEGATION.md), each hierarchy puts Brig in a different cgroup,
 * and no rule keeps processes out of inner cgroups, so there is no one cgroup
 * Brig was handed to build in. A container gets its own view of each
 * hierarchy from its cgroup namespace, so "the top" is then its own cgroup.
 */
import { join } from 'node:path';
import { SandboxError } from '../../errors.ts';
import { type CgroupDirOps, listChildCgroups, makeCgroupDir, pathExists } from '../files.ts';
import { ensureOwnedParents, isValidCgroupName, removeParentsIfUnused } from '../lifecycle.ts';
import type { CgroupCheck, CgroupManager, RunCgroup } from '../manager.ts';
import { describeV1 } from './describe.ts';
import { uniqueDirs, type V1ControllerDirs, V1RunCgroup } from './run-cgroup.ts';

export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids'] as const;

/** Where each controller's hierarchy is mounted. */
export type V1MountPoints = V1ControllerDirs;

export class V1CgroupManager implements CgroupManager {
  readonly version = 1 as const;
  readonly parentName: string;
  readonly mountPoints: V1MountPoints;
  private readonly parents: V1ControllerDirs;
  private readonly dirOps: CgroupDirOps;

  constructor(mountPoints: V1MountPoints, parentName: string, dirOps: CgroupDirOps) {
    this.mountPoints = mountPoints;
    this.parentName = parentName;
    this.dirOps = dirOps;
    this.parents = this.childDirs(mountPoints, parentName);
  }

  /** v1 needs nothing written in the parent: the controllers Brig uses have no per-parent setup (unlike cpuset). */
  ensureParent(): void {
    ensureOwnedParents(this.dirOps, uniqueDirs(this.parents));
  }

  open(name: string): RunCgroup {
    if (!isValidCgroupName(name))
      throw new SandboxError('cgroup_invalid_name', `cgroup name "${name}" must be one path component of letters, digits, '.', '_' or '-'`);
    const dirs = this.childDirs(this.parents, name);
    for (const parent of uniqueDirs(this.parents)) {
      if (!pathExists(parent))
        throw new SandboxError('cgroup_parent_missing', `cgroup parent ${parent} does not exist: call ensureParent() first`);
    }
    for (const dir of uniqueDirs(dirs)) makeCgroupDir(this.dirOps, dir);
    return new V1RunCgroup(name, dirs, this.dirOps);
  }

  async sweep(isLive: (name: string) => boolean): Promise<string[]> {
    const names = new Set(uniqueDirs(this.parents).flatMap(listChildCgroups));
    const removed: string[] = [];
    for (const name of [...names].sort()) {
      if (isLive(name)) continue;
      await new V1RunCgroup(name, this.childDirs(this.parents, name), this.dirOps).destroy();
      removed.push(name);
    }
    return removed;
  }

  childNames(): string[] {
    return [...new Set(uniqueDirs(this.parents).flatMap(listChildCgroups))].sort();
  }

  removeParentIfUnused(): void {
    removeParentsIfUnused(this.dirOps, uniqueDirs(this.parents));
  }

  describe(): CgroupCheck[] {
    return describeV1(this.mountPoints, this.parents);
  }

  private childDirs(base: V1ControllerDirs, name: string): V1ControllerDirs {
    return { memory: join(base.memory, name), cpu: join(base.cpu, name), cpuacct: join(base.cpuacct, name), pids: join(base.pids, name) };
  }
}
