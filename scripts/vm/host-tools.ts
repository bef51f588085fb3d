/**
 * What test:vm needs on the host, installed with apt when missing: qemu
 * (TCG only: KVM guests hang on these machines), a static busybox for the
 * initramfs, kmod's depmod to index a kernel package's modules, and xz for
 * modules shipped compressed. Kernels are not installed (kernels.ts): the
 * host's own boot is left alone.
 */
import { existsSync } from 'node:fs';
import { mustRun, run } from '../deploy/command.ts';

/** Debian package → a file that shows it is installed. */
const PACKAGES: Record<string, string> = {
  'qemu-system-x86': '/usr/bin/qemu-system-x86_64',
  'busybox-static': '/usr/share/doc/busybox-static',
  kmod: '/usr/sbin/depmod',
  'xz-utils': '/usr/bin/xz',
};

const APT_TIMEOUT_MS = 15 * 60_000;
export const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

export class HostNotReady extends Error {}

/** Installs the packages that are missing; returns their names. */
export async function installHostTools(): Promise<string[]> {
  if (process.getuid?.() !== 0) {
    throw new HostNotReady('npm run test:vm must run as root: it installs packages with apt and runs the tests inside the VM as root');
  }
  const missing = Object.entries(PACKAGES)
    .filter(([, file]) => !existsSync(file))
    .map(([name]) => name);
  if (missing.length === 0) return [];
  if (!existsSync('/usr/bin/apt-get')) throw new HostNotReady(`missing ${missing.join(', ')} and no apt-get here: install them by hand`);
  await mustRun('apt-get', ['update', '-qq'], { env: APT_ENV, timeoutMs: APT_TIMEOUT_MS });
  await mustRun('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env: APT_ENV, timeoutMs: APT_TIMEOUT_MS });
  return missing;
}

/** apt's package lists, fetched once when there are none (a fresh machine). */
export async function refreshPackageLists(): Promise<void> {
  await mustRun('apt-get', ['update', '-qq'], { env: APT_ENV, timeoutMs: APT_TIMEOUT_MS });
}

/** `apt-cache` output, '' when it fails (an unknown package). */
export async function aptCache(args: string[]): Promise<string> {
  const result = await run('apt-cache', args, { env: APT_ENV });
  return result.code === 0 ? result.stdout : '';
}
