import type { ImageLayout } from '../images/layout.ts';
import type { Limits } from '../limits.ts';
import { mbToBytes } from '../units.ts';
import { KERNEL_MASKED_PATHS, OCI_READONLY_PATHS } from './kernel-view.ts';
import { programRlimits } from './rlimits.ts';

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

/**
 * The host's OOM killer takes a sandbox first, before the worker, Redis or
 * anything else on the machine: the highest score there is. The launcher
 * writes it as host root, which also makes it the floor the sandbox cannot
 * go below.
 */
export const SANDBOX_OOM_SCORE_ADJ = 1000;

/** Builds the launcher's argv (see runtime/launcher/launcher.c for the options). */
export function launcherArgs(spec: LaunchSpec): string[] {
  const args = [
    '--map-root',
    String(spec.rootHostId),
    '--map-user',
    String(spec.userHostId),
    '--scratch',
    spec.scratchDir,
    '--root-bytes',
    String(mbToBytes(spec.limits.diskMb)),
    '--tmp-bytes',
    String(mbToBytes(spec.limits.diskMb)),
    '--box',
    spec.box.dir,
    '--box-mode',
    spec.box.mode,
    '--cwd',
    spec.cwd,
    // Init enforces the wall limit on the kernel's clock: it holds even while the runtime's event loop is stuck.
    '--wall-ms',
    String(Math.ceil(spec.limits.wallMs)),
    '--oom-score-adj',
    String(SANDBOX_OOM_SCORE_ADJ),
  ];
  for (const lower of spec.image.lowers) args.push('--lower', lower);
  for (const bind of spec.image.binds) args.push('--bind-ro', bind.source, bind.target);
  for (const path of OCI_READONLY_PATHS) args.push('--ro', path);
  for (const path of [...KERNEL_MASKED_PATHS, ...spec.image.masks]) args.push('--mask', path);
  for (const dir of spec.cgroupDirs) args.push('--cgroup', dir);
  for (const [name, value] of Object.entries(spec.env)) args.push('--env', `${name}=${value}`);
  for (const [name, value] of Object.entries(programRlimits(spec.limits))) args.push('--rlimit', name, String(value));
  args.push('--', ...spec.argv);
  return args;
}
