import { SandboxError } from '../errors.ts';
import type { ImageLayout } from '../images/layout.ts';
import type { Limits } from '../limits.ts';
import { mbToBytes } from '../units.ts';
import { KERNEL_MASKED_PATHS, OCI_READONLY_PATHS } from './kernel-view.ts';
import { MAX_GO_BYTES, MAX_GO_WORDS } from './protocol.ts';
import { programRlimits } from './rlimits.ts';

/** What every sandbox of a slot shares: the launcher's argv, known before any request. */
export interface SandboxSpec {
  image: ImageLayout;
  scratchDir: string;
  rootHostId: number;
  userHostId: number;
  cgroupDirs: string[];
  /** Size of the sandbox's writable tmpfs mounts while it waits: the slot's default disk limit, so a default step need not resize them. */
  tmpfsBytes: number;
}

/** What one step decides: the go message, sent when the request is there. */
export interface GoSpec {
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

/** Builds the launcher's argv (see runtime/launcher/launcher.c parse_args). */
export function launcherArgs(spec: SandboxSpec): string[] {
  const args = [
    '--map-root',
    String(spec.rootHostId),
    '--map-user',
    String(spec.userHostId),
    '--scratch',
    spec.scratchDir,
    '--oom-score-adj',
    String(SANDBOX_OOM_SCORE_ADJ),
    '--tmpfs-bytes',
    String(spec.tmpfsBytes),
  ];
  for (const lower of spec.image.lowers) args.push('--lower', lower);
  for (const bind of spec.image.binds) args.push('--bind-ro', bind.source, bind.target);
  for (const path of OCI_READONLY_PATHS) args.push('--ro', path);
  for (const path of [...KERNEL_MASKED_PATHS, ...spec.image.masks]) args.push('--mask', path);
  for (const dir of spec.cgroupDirs) args.push('--cgroup', dir);
  return args;
}

const GO_LENGTH_BYTES = 4;

/** The --env words of an environment; an environment object is usually a language's, the same every step. */
const envWordsOf = new WeakMap<Readonly<Record<string, string>>, readonly string[]>();

function envWords(env: Readonly<Record<string, string>>): readonly string[] {
  let words = envWordsOf.get(env);
  if (!words) {
    words = Object.entries(env).flatMap(([name, value]) => ['--env', `${name}=${value}`]);
    // Only a frozen environment can be trusted to be the same next time.
    if (Object.isFrozen(env)) envWordsOf.set(env, words);
  }
  return words;
}

/** The go message's words (see launcher.c parse_step), in order. */
export function goWords(spec: GoSpec): string[] {
  // The workspace itself goes with the message, as a mount fd (PreparedSandbox.go).
  const words = [
    '--box-mode',
    spec.box.mode,
    '--cwd',
    spec.cwd,
    '--root-bytes',
    String(mbToBytes(spec.limits.diskMb)),
    '--tmp-bytes',
    String(mbToBytes(spec.limits.diskMb)),
    // Init enforces the wall limit on the kernel's clock: it holds even while the runtime's event loop is stuck.
    '--wall-ms',
    String(Math.ceil(spec.limits.wallMs)),
  ];
  words.push(...envWords(spec.env));
  for (const [name, value] of Object.entries(programRlimits(spec.limits))) words.push('--rlimit', name, String(value));
  words.push('--', ...spec.argv);
  return words;
}

/**
 * The go message as init reads it: the length (4 bytes, little-endian),
 * then each word NUL-terminated. A word
 * holding a NUL would split in two there, so it is refused here, whatever the
 * API let through; so is a message the launcher would refuse for its size.
 */
export function goMessage(spec: GoSpec): Buffer {
  const words = goWords(spec);
  if (words.some((w) => w.includes('\0')))
    throw new SandboxError('go_message_invalid', 'an argument or environment value of the step holds a NUL byte');
  const body = Buffer.from(`${words.join('\0')}\0`);
  if (body.length > MAX_GO_BYTES || words.length > MAX_GO_WORDS)
    throw new SandboxError(
      'go_message_invalid',
      `the step's program, arguments and environment take ${body.length} bytes in ${words.length} words: the launcher takes ${MAX_GO_BYTES} bytes and ${MAX_GO_WORDS} words at most`,
    );
  const length = Buffer.alloc(GO_LENGTH_BYTES);
  length.writeUInt32LE(body.length);
  return Buffer.concat([length, body]);
}
