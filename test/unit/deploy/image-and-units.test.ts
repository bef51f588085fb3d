/**
 * The image's own files and the systemd units, against each other and
 * Brig's settings: what the Dockerfile copies is what its ignore file lets
 * through, the entrypoint starts the brig the healthcheck looks for, the
 * shell scripts parse, and the units stop Brig the way it drains.
 * (`npm run test:deploy` builds and runs the image and has systemd verify
 * the units.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadServiceConfig } from '../../../services/shared/config.ts';
import { deployPath, dockerEnv, dockerfile, documentedVariables, isDocumented, REPO } from './deploy-files.ts';

const instructions = dockerfile();
const env = dockerEnv(instructions);
const defaults = loadServiceConfig({});

/** The allowlist of Dockerfile.dockerignore: "**" then "!path" entries. */
function allowed(): string[] {
  const lines = readFileSync(deployPath('Dockerfile.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  assert.equal(lines[0], '**', 'everything is ignored, then what the image needs is let through');
  return lines.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
}

test('every COPY from the build context is let through by the ignore file, and exists', () => {
  const through = allowed();
  for (const copy of instructions.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
    const sources = copy.args
      .split(/\s+/)
      .slice(0, -1)
      .filter((s) => !s.startsWith('--'));
    for (const source of sources) {
      assert.ok(
        through.some((a) => source === a || source.startsWith(`${a}/`)),
        `COPY ${source} is ignored by Dockerfile.dockerignore`,
      );
      assert.ok(existsSync(join(REPO, source)), `COPY ${source}: no such file`);
    }
  }
});

test('the entrypoint execs tini and brig, whose command line the healthcheck looks for', () => {
  const entrypoint = instructions.find((i) => i.stage === 'final' && i.keyword === 'ENTRYPOINT')!;
  const [path] = JSON.parse(entrypoint.args) as string[];
  assert.equal(path, '/opt/brig/deploy/entrypoint.sh');
  const script = readFileSync(deployPath('entrypoint.sh'), 'utf8');
  const brig = /^BRIG=(\S+)$/m.exec(script)![1]!;
  assert.match(script, /^exec \/usr\/bin\/tini -- node "\$BRIG" "\$@"$/m);
  assert.match(readFileSync(deployPath('healthcheck.mjs'), 'utf8'), new RegExp(`BRIG_ENTRY = '${brig}'`));
  assert.equal(brig, '/opt/brig/bin/brig.js');
  assert.ok(existsSync(join(REPO, 'bin', 'brig.js')));
  const cmd = JSON.parse(instructions.find((i) => i.stage === 'final' && i.keyword === 'CMD')!.args) as string[];
  assert.deepEqual(cmd, ['serve']);
});

test('the image listens where Brig does by default, on every interface, with its state on a volume', () => {
  assert.equal(Number(env.PORT), defaults.port);
  assert.equal(Number(env.BRIG_WORKER_METRICS_PORT), defaults.workerMetricsPort);
  assert.equal(env.HOST, '0.0.0.0');
  const exposed = instructions.filter((i) => i.stage === 'final' && i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map(Number));
  assert.deepEqual(exposed.sort(), [Number(env.PORT), Number(env.BRIG_WORKER_METRICS_PORT)].sort());
  const volume = instructions.find((i) => i.stage === 'final' && i.keyword === 'VOLUME')!;
  assert.equal(volume.args, env.BRIG_STATE_DIR);
});

test('Node.js in the image is the major version package.json asks for', () => {
  const version = /NODE_VERSION=(\d+)\./.exec(instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_VERSION'))!.args)![1];
  const engines = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  assert.ok(Number(version) >= Number(/(\d+)/.exec(engines)![1]), `Node ${version} against engines ${engines}`);
});

test('the shell scripts parse, and the healthcheck is valid JavaScript', () => {
  for (const script of [deployPath('entrypoint.sh'), deployPath('redis', 'entrypoint.sh')]) {
    const result = spawnSync('sh', ['-n', script], { encoding: 'utf8' });
    assert.equal(result.status, 0, `${script}: ${result.stderr}`);
  }
  const result = spawnSync(process.execPath, ['--check', deployPath('healthcheck.mjs')], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
});

/** A unit file's [Service] keys (the last value of a repeated key wins, as systemd reads most of them). */
function serviceSection(path: string): Record<string, string> {
  const text = readFileSync(path, 'utf8');
  const section = text.slice(text.indexOf('[Service]'), text.indexOf('[Install]'));
  return Object.fromEntries(
    section
      .split('\n')
      .filter((l) => /^\w+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

test('the systemd units: brig of /opt/brig, KillMode=mixed, a stop timeout past the drain; the worker delegates its cgroup', () => {
  const units = readdirSync(deployPath('systemd')).filter((f) => f.endsWith('.service'));
  assert.deepEqual(units.sort(), ['brig-api.service', 'brig-worker.service']);
  for (const unit of units) {
    const service = serviceSection(deployPath('systemd', unit));
    const part = /^brig-(\w+)\.service$/.exec(unit)![1];
    assert.equal(service.ExecStart, `/usr/bin/node /opt/brig/bin/brig.js ${part}`);
    assert.equal(service.KillMode, 'mixed', `${unit}: SIGTERM to brig alone, which drains`);
    assert.ok(
      Number(/^(\d+)$/.exec(service.TimeoutStopSec!)![1]) * 1000 > defaults.shutdownGraceMs,
      `${unit}: TimeoutStopSec > BRIG_SHUTDOWN_GRACE_MS`,
    );
    assert.equal(service.EnvironmentFile, '/etc/brig/brig.env');
  }
  const worker = serviceSection(deployPath('systemd', 'brig-worker.service'));
  assert.equal(worker.Delegate, 'yes');
  assert.equal(worker.Environment, `BRIG_STATE_DIR=/var/lib/${worker.StateDirectory}`);
  const api = serviceSection(deployPath('systemd', 'brig-api.service'));
  assert.equal(api.CapabilityBoundingSet, '', 'the API needs no capability');
});

test('brig.env sets only variables the README documents', () => {
  const documented = documentedVariables();
  const lines = readFileSync(deployPath('systemd', 'brig.env'), 'utf8')
    .split('\n')
    .filter((l) => /^\w+=/.test(l));
  assert.ok(lines.length > 0);
  for (const line of lines) assert.ok(isDocumented(line.slice(0, line.indexOf('=')), documented), line);
});
