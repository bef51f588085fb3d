/**
 * cgroup v2: one unified tree. Brig's parent is <base>/<parentName>, with
 * memory, cpu and pids enabled for its children; each slot is a child of it.
 * <base> is the cgroup Brig runs in (placement.ts), taken into use as its
 * delegation allows (delegation.ts).
 */
import { join } from 'node:path';
import { SandboxError } from '../../errors.ts';
import { type CgroupDirOps, listChildCgroups, pathExists } from '../files.ts';
import { ensureOwnedParents, isValidCgroupName, refuseForeignParents, removeParentsIfUnused } from '../lifecycle.ts';
import type { CgroupCheck, CgroupManager, RunCgroup } from '../manager.ts';
import type { CgroupMount } from '../mountinfo.ts';
import { enableControllers, takeBaseIntoUse } from './delegation.ts';
import { describeV2 } from './describe.ts';
import { locateV2, type V2Placement } from './placement.ts';
import { tearDownV2, V2RunCgroup } from './run-cgroup.ts';

export { V2_CONTROLLERS } from './delegation.ts';

export class V2CgroupManager implements CgroupManager {
  readonly version = 2 as const;
  readonly parentName: string;
  /** The cgroup2 mount point. */
  readonly root: string;
  private readonly mount: CgroupMount;
  private readonly dirOps: CgroupDirOps;
  private readonly procCgroupPath: string;
  private located?: V2Placement;

  constructor(mount: CgroupMount, parentName: string, dirOps: CgroupDirOps, procCgroupPath: string) {
    this.mount = mount;
    this.root = mount.mountPoint;
    this.parentName = parentName;
    this.dirOps = dirOps;
    this.procCgroupPath = procCgroupPath;
  }

  /**
   * Where this process is now. Once ensureParent() has moved it into
   * <base>/init, finding it again gives the same base (placement.ts knows
   * the leaf), so the parent's path is kept for open() and sweep().
   */
  private locate(): V2Placement {
    return locateV2({ mount: this.mount, parentName: this.parentName, procCgroupPath: this.procCgroupPath, dirOps: this.dirOps });
  }

  placement(): V2Placement {
    this.located ??= this.locate();
    return this.located;
  }

  private get parent(): string {
    return this.placement().parent;
  }

  /**
   * In the order v2's rules force: the base's processes into its leaf, the
   * base's controllers for children, the parent (marked as Brig's; one that
   * is someone else's is refused before any of this), the parent's
   * controllers for the slots. The parent's
   * own cgroup.procs is never written: it hands controllers to children.
   */
  ensureParent(): void {
    const placement = this.locate();
    this.located = placement;
    refuseForeignParents(this.dirOps, [placement.parent]); // before anything is moved or enabled
    takeBaseIntoUse(placement, this.dirOps);
    ensureOwnedParents(this.dirOps, [placement.parent]);
    enableControllers(this.dirOps, placement.parent);
  }

  open(name: string): RunCgroup {
    if (!isValidCgroupName(name))
      throw new SandboxError('cgroup_invalid_name', `cgroup name "${name}" must be one path component of letters, digits, '.', '_' or '-'`);
    if (!pathExists(this.parent))
      throw new SandboxError('cgroup_parent_missing', `cgroup parent ${this.parent} does not exist: call ensureParent() first`);
    return V2RunCgroup.open(name, join(this.parent, name), this.dirOps);
  }

  async sweep(isLive: (name: string) => boolean): Promise<string[]> {
    const removed: string[] = [];
    for (const name of listChildCgroups(this.parent)) {
      if (isLive(name)) continue;
      await tearDownV2(join(this.parent, name), this.dirOps);
      removed.push(name);
    }
    return removed;
  }

  childNames(): string[] {
    return listChildCgroups(this.parent);
  }

  removeParentIfUnused(): void {
    removeParentsIfUnused(this.dirOps, [this.parent]);
  }

  describe(): CgroupCheck[] {
    return describeV2(this.root, () => this.locate(), this.dirOps);
  }
}
