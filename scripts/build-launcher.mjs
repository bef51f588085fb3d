#!/usr/bin/env node
// Builds runtime/launcher/launcher.c into build/brig-launcher with the system C
// compiler. Exit codes: 0 built, 1 compile failed, 2 no compiler on PATH.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'runtime/launcher/launcher.c');
const output = join(root, 'build/brig-launcher');
const cc = process.env.CC || 'cc';

const probe = spawnSync(cc, ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  console.error(`brig: no C compiler found (${cc}): install one, e.g. "apt-get install gcc libc6-dev" on Debian or Ubuntu`);
  process.exit(2);
}
mkdirSync(dirname(output), { recursive: true });
const flags = ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', '-D_FORTIFY_SOURCE=2', '-fstack-protector-strong', '-fPIE'];
// Linked statically: a launcher starts for every sandbox, and the dynamic
// loader (finding, mapping and relocating libc) was about 0.5 ms of each start.
// Needs libc.a (libc6-dev on Debian); without it the launcher is linked
// dynamically and says so.
let result = spawnSync(cc, [...flags, '-static-pie', '-o', `${output}.tmp`, source], { stdio: ['ignore', 'inherit', 'pipe'] });
if (result.status !== 0) {
  console.error(`brig: linking the launcher statically failed, linking it dynamically instead:\n${result.stderr}`);
  result = spawnSync(cc, [...flags, '-pie', '-o', `${output}.tmp`, source], { stdio: 'inherit' });
}
if (result.status !== 0) {
  console.error('brig: building the launcher failed (see the compiler output above)');
  process.exit(1);
}
renameSync(`${output}.tmp`, output);
console.log(`built ${output}`);
