/**
 * The images of deploy/: Brig (deploy/Dockerfile), and the compose stack's
 * Redis and Prometheus, all from the base image and Debian's packages (plus
 * Node.js and the npm packages from the npm registry). podman's layer cache
 * keeps them for the next run: a rebuild with nothing changed takes seconds.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Podman } from './podman.ts';

export const BRIG_IMAGE = 'localhost/brig:dev';
export const REDIS_IMAGE = 'localhost/brig-redis:dev';
export const PROMETHEUS_IMAGE = 'localhost/brig-prometheus:dev';

/**
 * The host's trust store, for the build's downloads from the npm registry:
 * behind a TLS-intercepting egress proxy it holds the proxy's CA. Handed to
 * the build as a secret, so the image never keeps it.
 */
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const BUILD_TIMEOUT_MS = 30 * 60_000;

export interface BuiltImage {
  name: string;
  ms: number;
}

export async function buildImages(podman: Podman, repoRoot: string): Promise<BuiltImage[]> {
  const deploy = join(repoRoot, 'deploy');
  const secret = existsSync(HOST_CA_BUNDLE) ? ['--secret', `id=build_ca,src=${HOST_CA_BUNDLE}`] : [];
  const builds: [string, string[]][] = [
    // --format docker: the OCI image format has no HEALTHCHECK.
    [
      BRIG_IMAGE,
      [
        'build',
        '--format',
        'docker',
        ...secret,
        '--ignorefile',
        join(deploy, 'Dockerfile.dockerignore'),
        '-f',
        join(deploy, 'Dockerfile'),
        '-t',
        BRIG_IMAGE,
        repoRoot,
      ],
    ],
    [REDIS_IMAGE, ['build', '--format', 'docker', '-t', REDIS_IMAGE, join(deploy, 'redis')]],
    [PROMETHEUS_IMAGE, ['build', '--format', 'docker', '-t', PROMETHEUS_IMAGE, join(deploy, 'prometheus')]],
  ];
  const built: BuiltImage[] = [];
  // One at a time: each build is heavy on a 2-core machine.
  for (const [name, args] of builds) {
    const result = await podman.mustPodman(args, { timeoutMs: BUILD_TIMEOUT_MS });
    built.push({ name, ms: result.ms });
  }
  return built;
}
