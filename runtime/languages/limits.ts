import type { RuntimeConfig } from '../config.ts';
import { type Limits, resolveLimits } from '../limits.ts';
import type { LanguageProfile } from './profile.ts';

/** What a language's steps get when a request asks for nothing. */
export interface LanguageLimits {
  run: Limits;
  /** Null for a language without a compile step. Requests never set these: they are server policy. */
  compile: Limits | null;
}

/**
 * A language's limits over the server defaults, checked against the maxima;
 * its compile step's own limits over those, with the compiler's output
 * capped at maxCompileOutputBytes so that a compiler flooding its
 * diagnostics cannot fill a run record.
 */
export function languageLimits(
  config: Pick<RuntimeConfig, 'defaults' | 'maxima' | 'maxCompileOutputBytes'>,
  language: LanguageProfile,
): LanguageLimits {
  const run = resolveLimits(language.limits, config.defaults, config.maxima);
  if (!language.compile) return { run, compile: null };
  const compile = resolveLimits(language.compileLimits, run, config.maxima);
  return { run, compile: { ...compile, outputBytes: Math.min(compile.outputBytes, config.maxCompileOutputBytes) } };
}
