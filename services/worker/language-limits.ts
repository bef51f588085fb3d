import type { LanguageProfile } from '../../runtime/languages/profile.ts';
import { resolveLimits, type Limits } from '../../runtime/limits.ts';
import type { RuntimeConfig } from '../shared/config.ts';

/**
 * The limits a language's steps get when the request asks for nothing: the
 * language profile over the server defaults. The compile step's output is
 * also capped at the service's maxCompileOutputBytes, so a compiler that
 * floods its diagnostics cannot fill the run record.
 */
export function defaultRunLimits(config: RuntimeConfig, language: LanguageProfile): Limits {
  return resolveLimits(undefined, language.limits, config.defaults, config.maxima);
}

export function defaultCompileLimits(config: RuntimeConfig, language: LanguageProfile, maxCompileOutputBytes: number): Limits | null {
  if (!language.compile) return null;
  const limits = resolveLimits(undefined, { ...language.limits, ...language.compileLimits }, config.defaults, config.maxima);
  return { ...limits, outputBytes: Math.min(limits.outputBytes, maxCompileOutputBytes) };
}
