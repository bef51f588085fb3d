/** `brig doctor` checks for a cgroup v1 host. */
import { isWritable, pathExists, readText } from '../files.ts';
import type { CgroupCheck } from '../manager.ts';
import { hasKey } from '../parse.ts';
import type { V1ControllerDirs } from './run-cgroup.ts';

export function describeV1(mountPoints: V1ControllerDirs, parents: V1ControllerDirs): CgroupCheck[] {
  const controllers = Object.entries(mountPoints) as [keyof V1ControllerDirs, string][];
  const checks: CgroupCheck[] = [
    { name: 'cgroup version', ok: true, detail: `v1 (${controllers.map(([name, path]) => `${name} at ${path}`).join(', ')})` },
    ...controllers.map(([name, path]) => ({ name: `controller ${name}`, ok: true, detail: `mounted at ${path}` })),
  ];
  const swapLimit = `${mountPoints.memory}/memory.memsw.limit_in_bytes`;
  checks.push(
    pathExists(swapLimit)
      ? { name: 'swap limit', ok: true, detail: 'memory.memsw.limit_in_bytes present: sandboxes cannot swap' }
      : {
          name: 'swap limit',
          ok: false,
          detail: 'no swap accounting: a sandbox may swap past its memory limit',
          fix: 'boot with swapaccount=1, or run without swap',
        },
  );
  checks.push(oomCounterCheck(`${mountPoints.memory}/memory.oom_control`));
  checks.push(favorDynmodsCheck(Object.values(mountPoints), readText('/proc/self/mountinfo')));
  checks.push({
    name: 'parent',
    ok: true,
    detail: `Brig builds in ${[...new Set(Object.values(parents))].join(', ')} (the top of each hierarchy: v1 has no delegation), one slot-N cgroup per sandbox slot below each`,
  });
  // Co-mounted controllers share one parent directory: check it once.
  const controllersByParent = new Map<string, string[]>();
  for (const [name, parent] of Object.entries(parents)) controllersByParent.set(parent, [...(controllersByParent.get(parent) ?? []), name]);
  for (const [parent, names] of controllersByParent) {
    const name = `parent ${names.join(',')}`;
    const target = pathExists(parent) ? parent : mountPoints[names[0] as keyof V1ControllerDirs];
    checks.push(
      isWritable(target)
        ? { name, ok: true, detail: `${target} is writable` }
        : {
            name,
            ok: false,
            detail: `${target} is not writable`,
            fix: 'run Brig as root with a writable cgroup mount (not a read-only /sys/fs/cgroup)',
          },
    );
  }
  return checks;
}

/**
 * Moving a process into a v1 cgroup (cgroup.procs) waits for an RCU grace
 * period, about 11 ms here, whenever no migration happened on the machine
 * for ~20 ms, unless a hierarchy is mounted with favordynmods (kernel ≥ 6.0),
 * which keeps the lock it takes in the slow-reader mode for good. Warm slots
 * pay that wait between requests, so it is advice, not a failure.
 */
export function favorDynmodsCheck(mountPoints: readonly string[], mountinfo: string): CgroupCheck {
  const name = 'favordynmods';
  const wanted = new Set(mountPoints);
  const without = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const [mountFields, superFields] = line.split(' - ');
    const mountPoint = mountFields?.split(' ')[4];
    if (!mountPoint || !superFields || !wanted.has(mountPoint)) continue;
    const superOptions = superFields.split(' ')[2]?.split(',') ?? [];
    if (!superOptions.includes('favordynmods')) without.add(mountPoint);
  }
  if (without.size === 0)
    return { name, ok: true, detail: `${mountPoints.join(', ')} mounted with favordynmods: joining a cgroup does not wait` };
  return {
    name,
    ok: true,
    detail:
      `${[...without].join(', ')} mounted without favordynmods: after ~20 ms without a cgroup migration, the next one waits ~11 ms for the kernel (RCU); ` +
      'warm slots (BRIG_WARM_SLOTS=1) pay it before requests arrive, a cold sandbox on the request path. ' +
      'To remove it, mount the cgroup v1 hierarchies with -o favordynmods (kernel ≥ 6.0; e.g. mount -o remount,favordynmods <hierarchy>, or in the mount unit that mounts them at boot)',
  };
}

function oomCounterCheck(path: string): CgroupCheck {
  try {
    if (hasKey(readText(path), 'oom_kill')) return { name: 'oom kill counter', ok: true, detail: `${path} counts oom_kill` };
  } catch {
    // reported below
  }
  return {
    name: 'oom kill counter',
    ok: false,
    detail: `${path} has no oom_kill line: memory_limit verdicts cannot be told apart`,
    fix: 'use a kernel ≥ 4.13',
  };
}
