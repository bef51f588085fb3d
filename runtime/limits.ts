import { RequestError } from './errors.ts';

/** Every limit one sandboxed step runs under. Units are in the names. */
export interface Limits {
  /** CPU time of all the step's processes together. */
  cpuMs: number;
  wallMs: number;
  memoryMb: number;
  /** Tasks (processes and threads) at once. */
  processes: number;
  /** stdout plus stderr; past it the step is killed with output_limit. */
  outputBytes: number;
  /** Largest file the program may write (RLIMIT_FSIZE). */
  fileSizeMb: number;
  openFiles: number;
  stackMb: number;
  /** Size of the writable layer (rootfs changes and the working dir); /tmp has the same cap of its own. */
  diskMb: number;
}

export const LIMIT_NAMES = [
  'cpuMs',
  'wallMs',
  'memoryMb',
  'processes',
  'outputBytes',
  'fileSizeMb',
  'openFiles',
  'stackMb',
  'diskMb',
] as const satisfies readonly (keyof Limits)[];

/**
 * The one place limits are resolved: a layer (what a request asks for, or
 * what a language profile sets) over a base of complete limits, and the
 * result checked against the server maximum. Applied twice it gives request
 * → language → server default (runtime/languages/limits.ts makes the base).
 * A value over the maximum is refused, never silently clamped, so the
 * caller knows what it got.
 */
export function resolveLimits(layer: Partial<Limits> | undefined, base: Limits, maxima: Limits): Limits {
  const resolved = { ...base, ...stripUndefined(layer) };
  for (const name of LIMIT_NAMES) {
    const value = resolved[name];
    if (!Number.isFinite(value) || value <= 0) {
      throw new RequestError('limit_invalid', `limit ${name} must be a positive number, got ${value}`, { field: `limits.${name}` });
    }
    if (value > maxima[name]) {
      throw new RequestError('limit_over_maximum', `limit ${name}=${value} is over the server maximum of ${maxima[name]}`, {
        field: `limits.${name}`,
      });
    }
  }
  return resolved;
}

function stripUndefined(limits: Partial<Limits> | undefined): Partial<Limits> {
  if (!limits) return {};
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) as Partial<Limits>;
}
