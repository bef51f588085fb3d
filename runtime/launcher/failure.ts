import { SandboxError } from '../errors.ts';
import { EXIT_OK, type StatusEvent } from './protocol.ts';

/** How the launcher process itself ended, as its parent reaped it. */
export interface LauncherExit {
  code: number | null;
  signal: number | null;
}

/**
 * A launcher that ended without reporting the program's exit. When the
 * program had been let go, ranMs says for how long it had run (measured from
 * go), so a launcher killed minutes into a run is not mistaken for a sandbox
 * that never got built; null means go was never sent.
 */
export function launcherFailure(event: StatusEvent | { kind: 'eof' }, exit: LauncherExit, ranMs: number | null): SandboxError {
  const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
  const when = ranMs === null ? 'before the program started' : `after the program had run for ${Math.round(ranMs)} ms`;
  if (event.kind === 'error') {
    const detail = `${event.text} (errno ${event.errno}, launcher ${how})`;
    if (ranMs === null) return new SandboxError('sandbox_setup_failed', `the sandbox could not be built: ${detail}`);
    return new SandboxError('sandbox_failed', `the sandbox failed ${when}: ${detail}`);
  }
  const ended = exit.code === EXIT_OK && !exit.signal ? 'without reporting' : `with ${how}`;
  return new SandboxError(ranMs === null ? 'sandbox_setup_failed' : 'sandbox_failed', `the launcher ended ${ended} ${when}`);
}
