/**
 * Taking the cgroup Brig builds in (placement.ts) into use on v2, within the
 * rules that decide what is Brig's to write:
 *
 * - Delegation. The kernel's cgroup-v2 "Model of Delegation" hands a cgroup
 *   over with its directory (create and remove children), its cgroup.procs
 *   (organise its processes) and its cgroup.subtree_control (hand its
 *   controllers down), and nothing else: its limits are set from above.
 *   systemd's Delegate=yes follows it (the unit's subtree is the service's;
 *   with User= it chowns exactly those files) and says the service must move
 *   its own processes into a sub-cgroup. A container's cgroup namespace root is
 *   delegated the same way (nsdelegate makes the namespace the boundary). So
 *   those two files of the delegated base, and the cgroups Brig creates below
 *   it, are Brig's to write; no other file of the base, and nothing above it.
 * - v2's no-internal-process rule: a non-root cgroup with processes of its own
 *   cannot enable controllers for its children (EBUSY), and no process can
 *   join a non-root cgroup that has them enabled. Hence the order: the base's
 *   processes move into the `init` leaf, then the base enables memory, cpu and
 *   pids, then Brig's parent is made and enables them for the slots.
 * - The root cgroup is exempt from that rule but belongs to the host's init
 *   (systemd: "don't create your own cgroups below the root cgroup"). Brig
 *   never writes its cgroup.subtree_control: with controllers missing there it
 *   refuses and names the one command that fixes it.
 */
import { HostError } from '../../errors.ts';
import {
  type CgroupDirOps,
  errnoBehind,
  isCreatedByBrig,
  isWritable,
  makeCgroupDir,
  markCreatedByBrig,
  moveProcess,
  pathExists,
  readCgroupXattr,
  readText,
  writeSubtreeControl,
} from '../files.ts';
import { readProcs } from '../lifecycle.ts';
import { parseNameList } from '../parse.ts';
import type { V2Placement } from './placement.ts';

export const V2_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;

/** What to configure when the base lacks controllers: said by the error and by `brig doctor`. */
export const DELEGATION_FIX =
  'delegate a cgroup to Brig: in a systemd service, Delegate=yes (or Delegate=memory cpu pids); in a container, its own cgroup namespace (docker run --cgroupns=private, the default on cgroup v2) over a cgroup whose parent enables memory, cpu and pids';

/**
 * Marks systemd leaves on the cgroups of its units (trusted.* as root, user.*
 * from v251 for unprivileged managers): every unit's cgroup has an invocation
 * id, and a unit with Delegate= also has delegate=1.
 */
const SYSTEMD_UNIT_XATTRS = ['trusted.invocation_id', 'user.invocation_id'];
const SYSTEMD_DELEGATE_XATTRS = ['trusted.delegate', 'user.delegate'];
const SYSTEMD_DELEGATED = '1';

/** Each round re-reads cgroup.procs for processes forked in the base while earlier ones moved. */
const MAX_MOVE_ROUNDS = 20;
/** Tries at the subtree_control write, which fails with EBUSY if a process was forked in the base after the last round. */
const MAX_ENABLE_ATTEMPTS = 5;
/** How the kernel lists a process that lives outside the reader's pid namespace. */
const PID_OUTSIDE_NAMESPACE = 0;

export function missingControllers(listPath: string): string[] {
  const listed = parseNameList(readText(listPath));
  return V2_CONTROLLERS.filter((controller) => !listed.includes(controller));
}

function enableRequest(controllers: readonly string[]): string {
  return controllers.map((controller) => `+${controller}`).join(' ');
}

export function rootEnableCommand(placement: V2Placement, missing: readonly string[]): string {
  return `echo "${enableRequest(missing)}" > ${placement.base}/cgroup.subtree_control`;
}

/**
 * Why the non-root base is not Brig's to build in, or undefined when it is:
 * it must offer memory, cpu and pids (its parent enabled them for it), and a
 * systemd unit's cgroup must be one systemd delegated. Controllers on offer
 * are not proof enough under systemd: a login session's scope has them for
 * accounting, and its processes and attributes are systemd's.
 */
export function delegationProblem(placement: V2Placement, dirOps: CgroupDirOps): string | undefined {
  const { base } = placement;
  const missing = missingControllers(`${base}/cgroup.controllers`);
  if (missing.length > 0) {
    return `the cgroup Brig runs in, ${base}, is not given the ${missing.join(', ')} controller(s) (${base}/cgroup.controllers): it was not delegated to Brig, so Brig cannot limit sandboxes inside it.`;
  }
  // A namespace's (or bind-mounted subtree's) own root is the container's cgroup, delegated by whoever made the container.
  if (base !== placement.mountPoint && isUndelegatedSystemdUnit(base, dirOps)) {
    return `the cgroup Brig runs in, ${base}, is a systemd unit's without delegation: its processes and attributes are systemd's.`;
  }
  return undefined;
}

function isUndelegatedSystemdUnit(dir: string, dirOps: CgroupDirOps): boolean {
  const isUnit = SYSTEMD_UNIT_XATTRS.some((name) => readCgroupXattr(dirOps, dir, name) !== undefined);
  return isUnit && !SYSTEMD_DELEGATE_XATTRS.some((name) => readCgroupXattr(dirOps, dir, name)?.trim() === SYSTEMD_DELEGATED);
}

/**
 * Makes the base ready to hold Brig's parent: at the root, checks that the
 * controllers are already enabled; elsewhere, checks the delegation, moves
 * the base's processes into the `init` leaf and enables the controllers.
 */
export function takeBaseIntoUse(placement: V2Placement, dirOps: CgroupDirOps): void {
  const { base } = placement;
  const missing = missingControllers(`${base}/cgroup.subtree_control`);
  if (placement.baseIsRoot) {
    if (missing.length > 0) {
      throw new HostError(
        'cgroup_controllers_not_enabled',
        `the root cgroup, where Brig runs, does not enable ${missing.join(', ')} for its children (${base}/cgroup.subtree_control), and it is the host's: Brig does not write it. Enable them once as root (${rootEnableCommand(placement, missing)}), or run Brig in a delegated cgroup (systemd: Delegate=yes)`,
      );
    }
    return;
  }
  const problem = delegationProblem(placement, dirOps);
  // doctor gives the fix a line of its own; the error carries it along.
  if (problem !== undefined) throw new HostError('cgroup_not_delegated', `${problem} To fix: ${DELEGATION_FIX}`);
  if (missing.length === 0) return; // enabled already: the kernel then keeps every process out of the base
  const leaf = placement.processLeaf!;
  if (makeCgroupDir(dirOps, leaf)) markCreatedByBrig(dirOps, leaf);
  for (let attempt = 1; ; attempt++) {
    moveAllProcesses(dirOps, base, leaf);
    try {
      writeSubtreeControl(dirOps, base, enableRequest(missing));
      return;
    } catch (err) {
      if (errnoBehind(err) !== 'EBUSY') throw err;
      if (attempt >= MAX_ENABLE_ATTEMPTS) {
        throw new HostError(
          'cgroup_controllers_unavailable',
          `cannot enable ${missing.join(', ')} in ${base}/cgroup.subtree_control: processes keep appearing in ${base} (EBUSY) after ${attempt} rounds of moving them into ${leaf}; start Brig's service with nothing else forking in its cgroup`,
          { cause: err },
        );
      }
    }
  }
}

/**
 * Every process in the base moves to the leaf, Brig's own included: the rule
 * is about the cgroup, so one left behind (a sibling `brig worker` the same
 * unit started, `brig serve`'s Redis, the shell that started Brig) keeps the
 * controllers off for all. Everything in a delegated cgroup is the
 * delegatee's, and the leaf is still inside it: the unit's or container's
 * limits and accounting still cover those processes. A write to cgroup.procs
 * moves a whole process, every thread of it.
 */
function moveAllProcesses(dirOps: CgroupDirOps, base: string, leaf: string): void {
  const procsPath = `${base}/cgroup.procs`;
  for (let round = 0; round < MAX_MOVE_ROUNDS; round++) {
    const pids = readProcs(procsPath);
    if (pids.length === 0) return;
    if (pids.includes(PID_OUTSIDE_NAMESPACE)) {
      throw new HostError(
        'cgroup_not_delegated',
        `${base} holds processes from outside Brig's pid namespace (pid 0 in ${procsPath}), which Brig cannot move out of the way: give Brig's service a cgroup of its own. To fix: ${DELEGATION_FIX}`,
      );
    }
    for (const pid of pids) moveProcess(dirOps, leaf, pid);
  }
}

/**
 * A child gets a controller's files only when its parent lists the
 * controller in cgroup.subtree_control. For Brig's own parent (which it
 * created): only missing controllers are written, so an unchanged parent sees
 * no write.
 */
export function enableControllers(dirOps: CgroupDirOps, dir: string): void {
  const missing = missingControllers(`${dir}/cgroup.subtree_control`);
  if (missing.length === 0) return;
  try {
    writeSubtreeControl(dirOps, dir, enableRequest(missing));
  } catch (err) {
    // EBUSY here is v2's no-internal-process rule: someone put a process into Brig's parent.
    throw new HostError(
      'cgroup_controllers_unavailable',
      `cannot enable ${missing.join(', ')} in ${dir}/cgroup.subtree_control: if the cgroup has processes of its own, move them to a child cgroup first`,
      { cause: err },
    );
  }
}

/** For `brig doctor`: whether the existing parent is Brig's; undefined when there is none yet. */
export function parentIsBrigs(placement: V2Placement, dirOps: CgroupDirOps): boolean | undefined {
  return pathExists(placement.parent) ? isCreatedByBrig(dirOps, placement.parent) : undefined;
}

/** For `brig doctor`: whether Brig may write the base's cgroup.subtree_control and cgroup.procs (a delegated, writable base). */
export function canTakeBaseIntoUse(placement: V2Placement): boolean {
  return isWritable(`${placement.base}/cgroup.subtree_control`) && isWritable(`${placement.base}/cgroup.procs`);
}
