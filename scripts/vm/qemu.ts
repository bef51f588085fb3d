/**
 * Boots one test:vm guest under qemu: TCG, never KVM (guests hang at boot
 * with it on these machines), the serial console on stdio (-nographic), and
 * two virtio-9p shares: the host's whole root read-only (multidevs=remap
 * keeps inode numbers of its many filesystems apart: without it /proc and
 * /sys collide) and the run's writable results share. The console is
 * written to a log and handed over line by line.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { UnpackedKernel } from './kernels.ts';

export interface BootOptions {
  kernel: UnpackedKernel;
  initramfs: string;
  /** Mounted read-write at /run/brig-vm in the guest. */
  shareDir: string;
  /**
   * The checkout, mounted read-only at the same path in the guest: it may
   * live under /tmp or /run (a CI's clone, say), which the guest replaces
   * with fresh ones.
   */
  repoDir: string;
  consoleLog: string;
  memoryMb: number;
  cpus: number;
  timeoutMs: number;
  onLine(line: string): void;
}

export interface BootOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  ms: number;
}

/**
 * quiet: the kernel's log stays off the console unless something is wrong.
 * panic=-1 with -no-reboot: a guest whose init dies stops qemu at once.
 */
const KERNEL_ARGS = 'console=ttyS0 quiet panic=-1';
/** Terminal control sequences (SeaBIOS clears the screen) and carriage returns. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing terminal escapes is this pattern's purpose.
const CONTROL = /\x1b\[[0-9;?]*[A-Za-z]|\x1bc|\r/g;

/**
 * tcg,thread=single: one host thread emulates both vCPUs in turn. Under
 * qemu's multi-threaded TCG (its default for this guest), node died of
 * SIGSEGV now and then, early in a start, with V8's own threads or without
 * them (--single-threaded): a probe that only imported modules saw 2 in 28
 * starts, and most runs of the suite retried one to three steps. The ten
 * runs with one thread on 2026-12-01 and -02 retried none, and took 646–1207
 * s against 463–473 s.
 */
export function qemuArgs(opts: Omit<BootOptions, 'onLine' | 'consoleLog' | 'timeoutMs'>): string[] {
  return [
    ['-machine', 'q35'],
    ['-accel', 'tcg,thread=single'],
    ['-cpu', 'max'],
    ['-smp', String(opts.cpus)],
    ['-m', String(opts.memoryMb)],
    ['-nographic'],
    ['-no-reboot'],
    ['-kernel', opts.kernel.image],
    ['-initrd', opts.initramfs],
    ['-append', KERNEL_ARGS],
    ['-virtfs', 'local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap'],
    ['-virtfs', `local,path=${opts.shareDir},mount_tag=brigvm,security_model=passthrough`],
    ['-virtfs', `local,path=${opts.repoDir},mount_tag=repo,security_model=passthrough,readonly=on,multidevs=remap`],
  ].flat();
}

/** Runs the VM to its end (the guest powers off) or to the timeout, when it is killed. */
export function bootVm(opts: BootOptions): Promise<BootOutcome> {
  const startMs = Date.now();
  const log = createWriteStream(opts.consoleLog);
  const child = spawn('qemu-system-x86_64', qemuArgs(opts), { stdio: ['ignore', 'pipe', 'pipe'] });
  let pending = '';
  const take = (chunk: Buffer) => {
    log.write(chunk);
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) opts.onLine(line.replace(CONTROL, ''));
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs);
  const stop = () => child.kill('SIGKILL');
  process.once('exit', stop);
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start qemu-system-x86_64: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      process.removeListener('exit', stop);
      if (pending) opts.onLine(pending.replace(CONTROL, ''));
      log.end();
      resolve({ code, signal, timedOut, ms: Date.now() - startMs });
    });
  });
}
