/** `brig doctor` checks for a cgroup v2 host. */
import { isWritable, pathExists, readText } from '../files.ts';
import type { CgroupCheck } from '../manager.ts';
import { parseNameList } from '../parse.ts';
import { peakModeOf } from './memory-peak.ts';

/** `needed`: the controllers Brig uses, passed in by the manager that owns the list. */
export function describeV2(root: string, parent: string, needed: readonly string[]): CgroupCheck[] {
  const checks: CgroupCheck[] = [{ name: 'cgroup version', ok: true, detail: `v2 at ${root}` }];
  const available = safeList(`${root}/cgroup.controllers`);
  for (const controller of needed) {
    checks.push(
      available.includes(controller)
        ? { name: `controller ${controller}`, ok: true, detail: `available in ${root}` }
        : {
            name: `controller ${controller}`,
            ok: false,
            detail: `missing from ${root}/cgroup.controllers`,
            fix: `enable the ${controller} controller (it may be bound to a v1 hierarchy)`,
          },
    );
  }
  const subtreePath = `${root}/cgroup.subtree_control`;
  const delegated = needed.every((controller) => safeList(subtreePath).includes(controller));
  checks.push(
    delegated || isWritable(subtreePath)
      ? {
          name: 'controllers for children',
          ok: true,
          detail: delegated ? `enabled in ${subtreePath}` : `Brig will enable them in ${subtreePath}`,
        }
      : {
          name: 'controllers for children',
          ok: false,
          detail: `${subtreePath} lacks ${needed.join(', ')} and is not writable`,
          fix: `echo "+memory +cpu +pids" > ${subtreePath} as root`,
        },
  );

  const parentExists = pathExists(parent);
  const target = parentExists ? parent : root;
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
