/**
 * cgroup v2: one unified tree. Brig's parent is <root>/<parentName>, with
 * memory, cpu and pids enabled for its children; each slot is a child of it.
 */
import { join } from 'node:path';
import { HostError, SandboxError } from '../../errors.ts';
import { type CgroupDirOps, listChildCgroups, pathExists, readText, writeText } from '../files.ts';
import { ensureOwnedParents, isValidCgroupName, removeParentsIfUnused } from '../lifecycle.ts';
import type { CgroupCheck, CgroupManager, RunCgroup } from '../manager.ts';
import { parseNameList } from '../parse.ts';
import { describeV2 } from './describe.ts';
import { tearDownV2, V2RunCgroup } from './run-cgroup.ts';

export const V2_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;

/**
 * A child gets a controller's files only when its parent lists the controller
 * in cgroup.subtree_control, and the parent only when its own parent does.
 * Only missing controllers are written, so a root already set up by systemd is
 * left alone.
 */
export function enableControllers(dir: string): void {
  const path = `${dir}/cgroup.subtree_control`;
  const enabled = parseNameList(readText(path));
  const missing = V2_CONTROLLERS.filter((controller) => !enabled.includes(controller));
  if (missing.length === 0) return;
  const request = missing.map((controller) => `+${controller}`).join(' ');
  try {
    writeText(path, request);
  } catch (err) {
    // EBUSY here is v2's no-internal-process rule: a non-root cgroup with processes cannot hand controllers down.
    throw new HostError(
      'cgroup_controllers_unavailable',
      `cannot enable ${missing.join(', ')} in ${path}: if the cgroup has processes of its own (e.g. in a container), move them to a child cgroup first`,
      { cause: err },
    );
  }
}

export class V2CgroupManager implements CgroupManager {
  readonly version = 2 as const;
  readonly parentName: string;
  readonly root: string;
  private readonly parent: string;
  private readonly dirOps: CgroupDirOps;

  constructor(root: string, parentName: string, dirOps: CgroupDirOps) {
    this.root = root;
    this.parentName = parentName;
    this.parent = join(root, parentName);
    this.dirOps = dirOps;
  }

  /** The parent's own cgroup.procs is never written: v2 forbids processes in a cgroup that hands controllers to children. */
  ensureParent(): void {
    enableControllers(this.root);
    ensureOwnedParents(this.dirOps, [this.parent]);
    enableControllers(this.parent);
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
    return describeV2(this.root, this.parent, V2_CONTROLLERS);
  }
}
