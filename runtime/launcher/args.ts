import type { ImageLayout } from '../images/layout.ts';
import type { Limits } from '../limits.ts';
import { BYTES_PER_MB, mbToBytes, msToWholeSecondsCeil } from '../units.ts';

export interface LaunchSpec {
  image: ImageLayout;
  scratchDir: string;
  rootHostId: number;
  userHostId: number;
  cgroupDirs: string[];
  box: { dir: string; mode: 'rw' | 'overlay' };
  cwd: string;
  env: Record<string, string>;
  argv: string[];
  limits: Limits;
}

/** RLIMIT_CPU is a per-process backstop; the cgroup-wide CPU counter normally fires first. */
const RLIMIT_CPU_SLACK_S = 1;

/** Builds the launcher's argv (see runtime/native/launcher.c for the options). */
export function launcherArgs(spec: LaunchSpec): string[] {
  const args = [
    '--map-root', String(spec.rootHostId),
    '--map-user', String(spec.userHostId),
    '--scratch', spec.scratchDir,
    '--root-bytes', String(mbToBytes(spec.limits.diskMb)),
    '--tmp-bytes', String(mbToBytes(spec.limits.diskMb)),
    '--box', spec.box.dir,
    '--box-mode', spec.box.mode,
    '--cwd', spec.cwd,
    // Init enforces the wall limit on the kernel's clock: it holds even while the runtime's event loop is stuck.
    '--wall-ms', String(Math.ceil(spec.limits.wallMs)),
  ];
  for (const lower of spec.image.lowers) args.push('--lower', lower);
  for (const bind of spec.image.binds) args.push('--bind-ro', bind.source, bind.target);
  for (const dir of spec.cgroupDirs) args.push('--cgroup', dir);
  for (const [name, value] of Object.entries(spec.env)) args.push('--env', `${name}=${value}`);
  const rlimits: [string, number][] = [
    ['cpu', msToWholeSecondsCeil(spec.limits.cpuMs) + RLIMIT_CPU_SLACK_S],
    ['fsize', spec.limits.fileSizeMb * BYTES_PER_MB],
    ['nofile', spec.limits.openFiles],
    ['stack', spec.limits.stackMb * BYTES_PER_MB],
    ['core', 0],
  ];
  for (const [name, value] of rlimits) args.push('--rlimit', name, String(value));
  args.push('--', ...spec.argv);
  return args;
}
