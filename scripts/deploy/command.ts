/**
 * The one place test:deploy starts outside programs (podman, podman-compose,
 * apt-get, mmdebstrap, systemd-analyze): each is run with a timeout, its
 * output captured, and a failure named with the command and what it printed.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** Print the output as it comes (for long builds), besides capturing it. */
  echo?: boolean;
}

const DEFAULT_TIMEOUT_MS = 120_000;
/** Of a failed command's output, this much goes into the error. */
const ERROR_OUTPUT_CHARS = 2_000;

export class CommandError extends Error {}

/** Runs a command to its end; never throws for a non-zero exit (see mustRun). */
export function run(command: string, args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const startMs = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (opts.echo) process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (opts.echo) process.stderr.write(chunk);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new CommandError(`cannot run ${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - startMs });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a command and throws unless it exits 0. */
export async function mustRun(command: string, args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const result = await run(command, args, opts);
  if (result.code !== 0) {
    const output = `${result.stderr}\n${result.stdout}`.trim().slice(-ERROR_OUTPUT_CHARS);
    throw new CommandError(`${command} ${args.join(' ')} exited ${result.code ?? result.signal}: ${output}`);
  }
  return result;
}
