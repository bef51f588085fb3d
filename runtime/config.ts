import type { Limits } from './limits.ts';

/**
 * What the runtime is given at start, and all it is given: the runtime never
 * reads the environment or imports the service layer. The service parses
 * this from the environment (services/shared/config.ts); `brig run` and the
 * tests build it the same way.
 */
export interface RuntimeConfig {
  /** Workspaces, slot locks, the image skeleton, compiled filters. */
  stateDir: string;
  profilesDir: string;
  launcherPath: string;
  /** An image profile's name in profilesDir/images. */
  image: string;
  /** A seccomp profile's name in profilesDir/seccomp. */
  seccompProfile: string;
  /** Sandboxes this process runs at once. */
  slots: number;
  /** Slots per machine, across every Brig process. */
  maxSlots: number;
  /** First host uid of the sandboxes (two per slot). */
  uidBase: number;
  cgroupParent: string;
  cgroupVersion: 'auto' | '1' | '2';
  /** CPU bandwidth of one sandbox, in cores. */
  cpuQuotaCores: number;
  /** Limits a step gets when neither the request nor its language sets them. */
  defaults: Limits;
  /** The most a request may ask for; over it is refused, never clamped. */
  maxima: Limits;
  /** Compiler output kept per compile step, under its outputBytes. */
  maxCompileOutputBytes: number;
  /**
   * Each slot prepares its next sandbox as soon as a step ends (see
   * runtime/slots/warm.ts), so a request pays only for what the step decides.
   * Off: every step builds its sandbox on the request's path.
   */
  warmSlots: boolean;
  /** A prepared sandbox unused for this long is discarded and prepared anew. */
  preparedMaxAgeMs: number;
}

/** The cgroup version to use, or undefined to detect it. */
export function cgroupVersionOf(config: Pick<RuntimeConfig, 'cgroupVersion'>): 1 | 2 | undefined {
  return config.cgroupVersion === 'auto' ? undefined : config.cgroupVersion === '1' ? 1 : 2;
}
