/**
 * npm run test:deploy: deploy/ as users run it, for real, on this kind of
 * machine (root, Debian 12, no container registry, Debian's archive and the
 * npm registry reachable).
 *
 *   1. host      podman, runc, podman-compose, dnsname, mmdebstrap, uidmap (apt);
 *                the Debian base image, made with mmdebstrap and imported
 *   2. images    deploy/Dockerfile, deploy/redis, deploy/prometheus
 *   3. privileges the worker's least privilege: compose's grants work, and
 *                without any one of them a sandbox fails
 *   4. serve     the image's default `brig serve` answers; SIGINT drains it
 *   5. stack     deploy/compose.yaml: Redis, API, 2 workers, Prometheus; runs,
 *                scrapes, alert rules, KEDA's keys, a worker killed mid-run,
 *                SIGTERM to each part; torn down with nothing left
 *   6. systemd   deploy/systemd/ passes systemd-analyze verify
 *
 * Images (and the base image) stay cached for the next run; everything else
 * it made is removed. Exit codes: 0 every check passed, 1 one failed, 2 bad
 * usage.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Checklist } from './checks.ts';
import { ensureBaseImage, installPackages } from './host-setup.ts';
import { buildImages } from './images.ts';
import { Podman } from './podman.ts';
import { checkPrivileges, type VariantOutcome, workerPrivileges } from './privileges.ts';
import { checkServeContainer } from './serve-container.ts';
import { checkComposeStack } from './stack-checks.ts';
import { checkSystemdUnits } from './systemd-units.ts';

const PHASES = ['host', 'images', 'privileges', 'serve', 'stack', 'systemd'] as const;
type Phase = (typeof PHASES)[number];

const USAGE = `Usage: npm run test:deploy [-- --skip PHASE,...]

Phases, in order: ${PHASES.join(', ')}. --skip leaves phases out (for work on
one of them; CI runs them all). Exit codes: 0 every check passed, 1 a check
failed, 2 bad usage.
`;
const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;
const REPO_ROOT = join(new URL('.', import.meta.url).pathname, '..', '..');
const MS_PER_S = 1000;

function cgroupVersion(): 1 | 2 {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 2 : 1;
}

function printPrivileges(outcomes: VariantOutcome[]): void {
  process.stdout.write('\nworker privileges (each row: a fresh container running brig doctor and three sandboxed programs)\n');
  for (const o of outcomes)
    process.stdout.write(`  ${o.works ? 'works' : 'fails'}  ${o.variant.name}${o.failure ? ` — ${o.failure}` : ''}\n`);
}

async function main(): Promise<number> {
  let skip: Set<Phase>;
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: { skip: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return EXIT.OK;
    }
    skip = new Set((values.skip ?? '').split(',').filter(Boolean) as Phase[]);
    const unknown = [...skip].filter((p) => !PHASES.includes(p));
    if (unknown.length > 0) throw new Error(`unknown phase ${unknown.join(', ')}`);
  } catch (error) {
    process.stderr.write(`test:deploy: ${(error as Error).message}\n${USAGE}`);
    return EXIT.USAGE;
  }

  const checks = new Checklist();
  const startMs = Date.now();
  const phaseMs: [Phase, number][] = [];
  let outcomes: VariantOutcome[] = [];
  const podman = Podman.create();
  try {
    for (const phase of PHASES) {
      if (skip.has(phase)) continue;
      const phaseStartMs = Date.now();
      process.stdout.write(`\n== ${phase}\n`);
      let ok = true;
      switch (phase) {
        case 'host':
          ok =
            (await checks.check('packages', async () => `installed: ${(await installPackages()).join(', ') || 'nothing (all present)'}`)) &&
            (await checks.check('the base image', async () =>
              (await ensureBaseImage(podman)) ? 'made with mmdebstrap and imported' : 'cached',
            ));
          break;
        case 'images':
          ok = await checks.check('build the images', async () =>
            (await buildImages(podman, REPO_ROOT)).map((b) => `${b.name} ${(b.ms / MS_PER_S).toFixed(0)} s`).join(', '),
          );
          break;
        case 'privileges':
          outcomes = await checkPrivileges(podman, checks, join(REPO_ROOT, 'deploy', 'compose.yaml'), cgroupVersion());
          break;
        case 'serve':
          await checkServeContainer(podman, checks, workerPrivileges(join(REPO_ROOT, 'deploy', 'compose.yaml')));
          break;
        case 'stack':
          await checkComposeStack(podman, checks, REPO_ROOT);
          break;
        case 'systemd':
          await checkSystemdUnits(checks, REPO_ROOT);
          break;
      }
      phaseMs.push([phase, Date.now() - phaseStartMs]);
      // Without packages or images nothing after can run.
      if (!ok) break;
    }
  } finally {
    podman.close();
  }

  if (outcomes.length > 0) printPrivileges(outcomes);
  const failed = checks.failed;
  process.stdout.write(
    `\n${checks.results.length - failed.length} of ${checks.results.length} checks passed in ${((Date.now() - startMs) / MS_PER_S).toFixed(0)} s (${phaseMs.map(([p, ms]) => `${p} ${(ms / MS_PER_S).toFixed(0)} s`).join(', ')})\n`,
  );
  for (const f of failed) process.stdout.write(`FAIL  ${f.name}: ${f.detail}\n`);
  return failed.length === 0 ? EXIT.OK : EXIT.FAILED;
}

process.exitCode = await main();
