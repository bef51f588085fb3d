/** `brig doctor` checks for a cgroup v2 host: where Brig will build, and whether the cgroup it runs in lets it. */
import { type CgroupDirOps, isWritable, pathExists, readText } from '../files.ts';
import type { CgroupCheck } from '../manager.ts';
import { parseNameList } from '../parse.ts';
import { canTakeBaseIntoUse, DELEGATION_FIX, delegationProblem, parentIsBrigs, rootEnableCommand, V2_CONTROLLERS } from './delegation.ts';
import { peakModeOf } from './memory-peak.ts';
import type { V2Placement } from './placement.ts';

/** `locate` finds the placement as ensureParent() would; its failure is reported, not thrown. Nothing is written. */
export function describeV2(mountPoint: string, locate: () => V2Placement, dirOps: CgroupDirOps): CgroupCheck[] {
  const checks: CgroupCheck[] = [{ name: 'cgroup version', ok: true, detail: `v2 at ${mountPoint}` }];
  let placement: V2Placement;
  try {
    placement = locate();
  } catch (err) {
    checks.push({ name: 'placement', ok: false, detail: (err as Error).message, fix: DELEGATION_FIX });
    return checks;
  }
  checks.push(placementCheck(placement), parentCheck(placement, dirOps));
  checks.push(...(placement.baseIsRoot ? rootControllerChecks(placement) : delegatedControllerChecks(placement, dirOps)));

  const { parent } = placement;
  const parentExists = pathExists(parent);
  const target = parentExists ? parent : placement.base;
  checks.push(
    isWritable(target)
      ? { name: 'parent writable', ok: true, detail: `${target} is writable` }
      : {
          name: 'parent writable',
          ok: false,
          detail: `${target} is not writable`,
          fix: 'run Brig as root, or delegate a writable cgroup subtree to it',
        },
  );
  if (!parentExists) return checks;

  const parentProcs = safeList(`${parent}/cgroup.procs`);
  checks.push(
    parentProcs.length === 0
      ? { name: 'parent has no processes', ok: true, detail: `${parent}/cgroup.procs is empty` }
      : {
          name: 'parent has no processes',
          ok: false,
          detail: `${parent} holds pids ${parentProcs.join(' ')}`,
          fix: `move them out: v2 allows no processes in a cgroup whose children use controllers`,
        },
  );
  checks.push(swapCheck(parent), peakCheck(parent));
  return checks;
}

function placementCheck(placement: V2Placement): CgroupCheck {
  const { ownCgroup, base, processLeaf } = placement;
  let detail: string;
  if (placement.baseIsRoot) detail = `Brig runs in the root cgroup ${base}, which is exempt from the no-internal-process rule`;
  else if (ownCgroup !== base) detail = `Brig runs in ${ownCgroup}, the leaf of its service's processes; it builds in ${base}`;
  else
    detail = `Brig runs in ${ownCgroup}; at start it moves the processes there into ${processLeaf}, since a non-root cgroup with processes cannot hand controllers down`;
  return { name: 'placement', ok: true, detail };
}

function parentCheck(placement: V2Placement, dirOps: CgroupDirOps): CgroupCheck {
  const { parent } = placement;
  let brigs: boolean | undefined;
  try {
    brigs = parentIsBrigs(placement, dirOps);
  } catch (err) {
    return { name: 'parent', ok: false, detail: `Brig builds in ${parent}, but ${(err as Error).message}`, fix: 'run brig doctor as root' };
  }
  if (brigs === false) {
    return {
      name: 'parent',
      ok: false,
      detail: `Brig builds in ${parent}, which exists and was not created by Brig: Brig would refuse to start`,
      fix: `set BRIG_CGROUP_PARENT to another name, or remove ${parent} if nothing uses it`,
    };
  }
  const state = brigs ? ' (exists, made by Brig)' : '';
  return { name: 'parent', ok: true, detail: `Brig builds in ${parent}${state}: one slot-N cgroup per sandbox slot below it` };
}

/** At the root: the controllers must exist and be enabled for children already; Brig does not write the root. */
function rootControllerChecks(placement: V2Placement): CgroupCheck[] {
  const { base } = placement;
  const available = safeList(`${base}/cgroup.controllers`);
  const checks: CgroupCheck[] = V2_CONTROLLERS.map((controller) =>
    available.includes(controller)
      ? { name: `controller ${controller}`, ok: true, detail: `available in ${base}` }
      : {
          name: `controller ${controller}`,
          ok: false,
          detail: `missing from ${base}/cgroup.controllers`,
          fix: `enable the ${controller} controller (it may be bound to a v1 hierarchy)`,
        },
  );
  const subtreePath = `${base}/cgroup.subtree_control`;
  const enabled = safeList(subtreePath);
  const missing = V2_CONTROLLERS.filter((controller) => !enabled.includes(controller));
  checks.push(
    missing.length === 0
      ? { name: 'controllers for children', ok: true, detail: `enabled in ${subtreePath}` }
      : {
          name: 'controllers for children',
          ok: false,
          detail: `${missing.join(', ')} not enabled in ${subtreePath}: the root cgroup is the host's, and Brig does not write it`,
          fix: `as root: ${rootEnableCommand(placement, missing)}; or run Brig in a delegated cgroup (systemd: Delegate=yes)`,
        },
  );
  return checks;
}

/** Below the root: the controllers must be delegated to the base; Brig enables them in it itself. */
function delegatedControllerChecks(placement: V2Placement, dirOps: CgroupDirOps): CgroupCheck[] {
  const { base, processLeaf } = placement;
  const available = safeList(`${base}/cgroup.controllers`);
  const checks: CgroupCheck[] = V2_CONTROLLERS.map((controller) =>
    available.includes(controller)
      ? { name: `controller ${controller}`, ok: true, detail: `delegated to ${base}` }
      : {
          name: `controller ${controller}`,
          ok: false,
          detail: `not delegated to ${base} (missing from ${base}/cgroup.controllers)`,
          fix: DELEGATION_FIX,
        },
  );
  if (checks.some((check) => !check.ok)) return checks;
  let problem: string | undefined;
  try {
    problem = delegationProblem(placement, dirOps);
  } catch (err) {
    problem = (err as Error).message;
  }
  checks.push(
    problem === undefined
      ? { name: 'delegation', ok: true, detail: `${base} is delegated: Brig may write its cgroup.procs and cgroup.subtree_control` }
      : { name: 'delegation', ok: false, detail: problem, fix: DELEGATION_FIX },
  );
  const subtreePath = `${base}/cgroup.subtree_control`;
  const enabled = safeList(subtreePath);
  let children: CgroupCheck;
  if (V2_CONTROLLERS.every((controller) => enabled.includes(controller))) {
    children = { name: 'controllers for children', ok: true, detail: `enabled in ${subtreePath}` };
  } else if (canTakeBaseIntoUse(placement)) {
    children = {
      name: 'controllers for children',
      ok: true,
      detail: `Brig will move the processes of ${base} into ${processLeaf}, then enable them in ${subtreePath}`,
    };
  } else {
    children = {
      name: 'controllers for children',
      ok: false,
      detail: `${subtreePath} or ${base}/cgroup.procs is not writable`,
      fix: 'run Brig as root; with User=, Delegate=yes makes systemd hand these files to the user; in a container, make its cgroup mount writable',
    };
  }
  checks.push(children);
  return checks;
}

function swapCheck(parent: string): CgroupCheck {
  return pathExists(`${parent}/memory.swap.max`)
    ? { name: 'swap limit', ok: true, detail: 'memory.swap.max present: sandboxes cannot swap' }
    : {
        name: 'swap limit',
        ok: false,
        detail: 'no swap accounting: a sandbox may swap past its memory limit',
        fix: 'boot with swapaccount=1, or run without swap',
      };
}

/** The parent is a non-root cgroup, so its memory.peak has the same kernel behaviour as a slot's. */
function peakCheck(parent: string): CgroupCheck {
  switch (peakModeOf(`${parent}/memory.peak`)) {
    case 'per-fd':
      return { name: 'memory peak', ok: true, detail: 'memory.peak is resettable per fd (kernel ≥ 6.12): exact per-run peaks' };
    case 'since-creation':
      return { name: 'memory peak', ok: true, detail: 'memory.peak is not resettable: each run gets a freshly created cgroup' };
    case 'sampled':
      return {
        name: 'memory peak',
        ok: false,
        detail: 'no memory.peak (kernel < 5.19): peaks are sampled and may miss short spikes',
        fix: 'use a kernel ≥ 6.12',
      };
  }
}

function safeList(path: string): string[] {
  try {
    return parseNameList(readText(path));
  } catch {
    return [];
  }
}
