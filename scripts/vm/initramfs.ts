/**
 * The initramfs test:vm boots with: Debian's static busybox, init.sh as
 * /init, and the modules init.sh loads to reach the host's files (virtio's
 * PCI transport, 9p over virtio, overlayfs), taken from the booted kernel's
 * own package with their dependencies, in load order. A module the kernel
 * has built in is left out. Cached per kernel and content: a changed init.sh
 * makes a new one.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { mustRun } from '../deploy/command.ts';
import type { UnpackedKernel } from './kernels.ts';

/** What init.sh needs before the host's root is reachable; each pulls in its dependencies. */
const WANTED_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];
const INIT_SCRIPT = new URL('init.sh', import.meta.url).pathname;
const BUSYBOX = '/bin/busybox';
const MODULE_SUFFIX = /\.ko(\.xz|\.zst|\.gz)?$/;
const HASH_CHARS = 12;

/** A module's name as modprobe knows it: the file name without .ko and compression, '-' read as '_'. */
export function moduleName(path: string): string {
  return basename(path).replace(MODULE_SUFFIX, '').replaceAll('-', '_');
}

/** modules.dep: each module's path (relative to the modules dir) → its dependencies' paths, as depmod lists them. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    deps.set(
      line.slice(0, colon),
      line
        .slice(colon + 1)
        .split(/\s+/)
        .filter(Boolean),
    );
  }
  return deps;
}

/**
 * The module files to load, dependencies first. depmod lists a module's
 * dependencies with the ones it needs directly first, so they are loaded
 * from the end of the list.
 */
export function loadOrder(deps: Map<string, string[]>, builtin: Set<string>, wanted: readonly string[]): string[] {
  const byName = new Map([...deps.keys()].map((path) => [moduleName(path), path]));
  const order: string[] = [];
  const add = (path: string) => {
    if (order.includes(path)) return;
    for (const dep of [...(deps.get(path) ?? [])].reverse()) add(dep);
    order.push(path);
  };
  for (const name of wanted) {
    const path = byName.get(name);
    if (path) add(path);
    else if (!builtin.has(name))
      throw new Error(`the kernel has no module ${name}, built in or loadable: test:vm cannot reach the host's files with it`);
  }
  return order;
}

function builtinModules(modulesDir: string): Set<string> {
  const path = join(modulesDir, 'modules.builtin');
  if (!existsSync(path)) return new Set();
  return new Set(readFileSync(path, 'utf8').split('\n').filter(Boolean).map(moduleName));
}

/** Copies a module into the initramfs uncompressed: busybox's insmod takes plain .ko files. */
async function copyModule(source: string, target: string): Promise<void> {
  if (source.endsWith('.ko')) return copyFileSync(source, target);
  const tool = source.endsWith('.xz') ? 'xz' : source.endsWith('.zst') ? 'zstd' : 'gzip';
  await mustRun('sh', ['-c', `${tool} -dc "$1" > "$2"`, 'sh', source, target]);
}

/** Builds (or finds in the cache) the initramfs for `kernel`; returns its path. */
export async function buildInitramfs(kernel: UnpackedKernel, cacheDir: string): Promise<string> {
  const deps = parseModulesDep(readFileSync(join(kernel.modulesDir, 'modules.dep'), 'utf8'));
  const order = loadOrder(deps, builtinModules(kernel.modulesDir), WANTED_MODULES);
  const init = readFileSync(INIT_SCRIPT);
  const hash = createHash('sha256')
    .update(init)
    .update(readFileSync(BUSYBOX))
    .update(kernel.release)
    .update(order.join('\n'))
    .digest('hex')
    .slice(0, HASH_CHARS);
  const dir = join(cacheDir, 'initramfs');
  const output = join(dir, `${kernel.release}-${hash}.cpio.gz`);
  if (existsSync(output)) return output;

  mkdirSync(dir, { recursive: true });
  // Older builds for this kernel (an earlier init.sh) are of no more use.
  for (const name of readdirSync(dir)) if (name.startsWith(`${kernel.release}-`)) rmSync(join(dir, name), { force: true });
  const tree = mkdtempSync(join(dir, '.tree-'));
  try {
    for (const sub of ['bin', 'modules', 'proc', 'sys', 'dev']) mkdirSync(join(tree, sub));
    copyFileSync(BUSYBOX, join(tree, 'bin', 'busybox'));
    writeFileSync(join(tree, 'init'), init, { mode: 0o755 });
    for (const path of order) await copyModule(join(kernel.modulesDir, path), join(tree, 'modules', `${moduleName(path)}.ko`));
    writeFileSync(join(tree, 'modules', 'order'), `${order.map(moduleName).join('\n')}\n`);
    const partial = `${output}.partial`;
    await mustRun('bash', [
      '-c',
      'set -o pipefail; cd "$1" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$2"',
      'bash',
      tree,
      partial,
    ]);
    renameSync(partial, output);
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
  return output;
}
