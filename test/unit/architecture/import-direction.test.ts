/**
 * Dependencies flow one way: the API and the workers use the shared service
 * modules, the workers (and the CLI) use the runtime, and the runtime uses
 * nothing above it. Read from the import lines of every source file, so a
 * wrong import fails here before it can grow into a second owner of a
 * concept.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
/** `from '…'` and `import('…')` of a relative path; the text is our own source, matched line by line. */
const IMPORT = /(?:from\s+|import\s*\(\s*)'(\.[^']*)'/g;

/** Folder (from the repo root) → folders it must never import from. */
const FORBIDDEN: [string, string[]][] = [
  ['runtime', ['services', 'cli', 'loadtest', 'bench', 'test', 'deploy']],
  ['services/shared', ['services/api', 'services/worker', 'cli']],
  ['services/api', ['services/worker', 'cli']],
  ['services/worker', ['services/api', 'cli']],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => relative(ROOT, resolve(dirname(file), m[1]!)));
}

const within = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);

for (const [folder, forbidden] of FORBIDDEN) {
  test(`${folder} imports nothing from ${forbidden.join(', ')}`, () => {
    const wrong = sourceFiles(join(ROOT, folder)).flatMap((file) =>
      importsOf(file)
        .filter((target) => forbidden.some((f) => within(target, f)))
        .map((target) => `${relative(ROOT, file)} → ${target}`),
    );
    assert.deepEqual(wrong, []);
  });
}
