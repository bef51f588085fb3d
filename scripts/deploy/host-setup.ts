/**
 * What test:deploy needs on a fresh machine of this kind, installed with apt
 * (Debian's archive is reachable, no container registry is): podman, runc,
 * podman-compose, the CNI dnsname plugin (compose services find each other
 * by name), mmdebstrap and uidmap. And the base image every Dockerfile of
 * deploy/ starts FROM, made offline from Debian's packages and imported
 * under the name a registry would give it. Both are kept for the next run.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mustRun, run } from './command.ts';
import type { Podman } from './podman.ts';

export const BASE_IMAGE = 'docker.io/library/debian:bookworm-slim';
const BASE_SUITE = 'bookworm';

/** Debian package → a file that shows it is installed. */
const PACKAGES: Record<string, string> = {
  podman: '/usr/bin/podman',
  runc: '/usr/bin/runc',
  'podman-compose': '/usr/bin/podman-compose',
  'golang-github-containernetworking-plugin-dnsname': '/usr/lib/cni/dnsname',
  mmdebstrap: '/usr/bin/mmdebstrap',
  uidmap: '/usr/bin/newuidmap',
};

const APT_TIMEOUT_MS = 15 * 60_000;
const MMDEBSTRAP_TIMEOUT_MS = 15 * 60_000;

/** Installs the packages that are missing; returns their names. */
export async function installPackages(): Promise<string[]> {
  if (process.getuid?.() !== 0) throw new Error('npm run test:deploy must run as root: it installs packages and runs rootful podman');
  const missing = Object.entries(PACKAGES)
    .filter(([, file]) => !existsSync(file))
    .map(([name]) => name);
  if (missing.length === 0) return [];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await mustRun('apt-get', ['update', '-qq'], { env, timeoutMs: APT_TIMEOUT_MS });
  await mustRun('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, timeoutMs: APT_TIMEOUT_MS });
  // The packages enable podman's API socket and restart units on systemd hosts; nothing here needs them.
  if (existsSync('/run/systemd/system')) await run('systemctl', ['disable', '--now', 'podman.socket', 'podman-restart.service']);
  return missing;
}

/** Makes the base image with mmdebstrap unless podman has it; returns true when it was made now. */
export async function ensureBaseImage(podman: Podman): Promise<boolean> {
  if (await podman.imageExists(BASE_IMAGE)) return false;
  const dir = mkdtempSync(join(tmpdir(), 'brig-test-deploy-base-'));
  try {
    const tarball = join(dir, 'base.tar');
    await mustRun('mmdebstrap', ['--variant=minbase', BASE_SUITE, tarball], { timeoutMs: MMDEBSTRAP_TIMEOUT_MS });
    await podman.mustPodman(['import', tarball, BASE_IMAGE], { timeoutMs: MMDEBSTRAP_TIMEOUT_MS });
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
