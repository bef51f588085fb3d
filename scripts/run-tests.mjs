#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
// Runs every *.test.ts under test/ (or the folders/files given) with node's
// built-in runner. Node 20's --test does not expand globs, so we list files here.
//
// test/integration needs root: it creates cgroups, runs sandboxes as other
// host uids and loads seccomp filters into real processes. Run by another
// user, this leaves those files out, says so in one line, and exits with the
// result of the rest (README, Tests).
import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const INTEGRATION_DIR = fileURLToPath(new URL('../test/integration', import.meta.url));

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
  return out;
}

function isIntegration(file) {
  const path = relative(INTEGRATION_DIR, resolve(file));
  return path !== '..' && !path.startsWith(`..${sep}`) && !isAbsolute(path);
}

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test'];
const found = roots.flatMap((root) => collect(root, []));
if (found.length === 0) {
  console.error(`no test files found under ${roots.join(', ')}`);
  process.exit(2);
}

const isRoot = process.getuid?.() === 0;
const files = isRoot ? found : found.filter((file) => !isIntegration(file));
const skipped = found.length - files.length;
const skipLine = `skipped ${skipped} ${skipped === 1 ? 'file' : 'files'} of test/integration: they need root (cgroups, sandboxes that run as other host uids, seccomp filters in real processes) and this runs as uid ${process.getuid?.()}; run the tests as root to include them`;

let status = 0;
if (files.length > 0) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
  status = result.status ?? 1;
}
// Last, so that it is the line a reader sees under the runner's summary.
if (skipped > 0) console.error(skipLine);
process.exit(status);
