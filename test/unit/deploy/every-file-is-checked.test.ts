/**
 * Every file in deploy/ is run by `npm run test:deploy` or checked by a test
 * here: each must be named by the code that does one or the other (the tests
 * of this folder, scripts/deploy/) or by a file that is itself run there
 * (compose.yaml mounts and builds, the Dockerfiles copy, the kustomization
 * lists the manifests that kubernetes.test.ts reads). A new file that nothing
 * names fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { test } from 'node:test';
import { DEPLOY, REPO } from './deploy-files.ts';

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

const CHECKERS = [
  ...walk(join(REPO, 'test', 'unit', 'deploy')),
  ...walk(join(REPO, 'scripts', 'deploy')),
  join(DEPLOY, 'compose.yaml'),
  join(DEPLOY, 'Dockerfile'),
  join(DEPLOY, 'redis', 'Dockerfile'),
  join(DEPLOY, 'k8s', 'kustomization.yaml'),
];

test('every file in deploy/ is named by a test, by test:deploy, or by a file they run', () => {
  const text = CHECKERS.map((f) => readFileSync(f, 'utf8')).join('\n');
  const unnamed = walk(DEPLOY)
    .filter((file) => {
      if (CHECKERS.includes(file) && !file.endsWith('kustomization.yaml') && !file.endsWith('compose.yaml')) return false;
      const name = basename(file);
      const quoted = [`'${name}'`, `"${name}"`, `/${name}`, `- ${name}`, ` ${name} `, `${name}:`];
      return !quoted.some((q) => text.includes(q));
    })
    .map((f) => relative(REPO, f));
  assert.deepEqual(unnamed, []);
});
