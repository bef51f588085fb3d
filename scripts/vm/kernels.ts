/**
 * The kernels test:vm boots: Debian's default (linux-image-amd64, 6.1 on
 * Debian 12) and the newest linux-image-X.Y-amd64 apt offers beyond it (6.12
 * from bookworm-security or bookworm-backports, where the host's sources
 * have one). Each is fetched with `apt-get download` and unpacked into the
 * cache with dpkg-deb, never installed: installing would pull in
 * initramfs-tools and write the host's /boot. depmod indexes the unpacked
 * modules so initramfs.ts can resolve their dependencies.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mustRun, run } from '../deploy/command.ts';
import { APT_ENV, aptCache, refreshPackageLists } from './host-tools.ts';

export type KernelLabel = 'default' | 'newer';

export interface KernelChoice {
  label: KernelLabel;
  /** The metapackage that names it, e.g. linux-image-amd64. */
  metaPackage: string;
  /** e.g. linux-image-6.1.0-57-amd64. */
  imagePackage: string;
  packageVersion: string;
  /** What `uname -r` says, and the name of its modules folder: e.g. 6.1.0-57-amd64. */
  release: string;
}

export interface UnpackedKernel extends KernelChoice {
  /** The bzImage to boot. */
  image: string;
  /** lib/modules/<release>, indexed by depmod. */
  modulesDir: string;
}

const DEFAULT_META = 'linux-image-amd64';
const IMAGE_PREFIX = 'linux-image-';
/** Metapackages that follow one kernel series, e.g. linux-image-6.12-amd64. */
const SERIES_META = /^linux-image-(\d+)\.(\d+)-amd64$/;
const RELEASE_SERIES = /^(\d+)\.(\d+)/;
const COMPLETE_MARK = '.complete';
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;

interface Candidate {
  version: string;
  imagePackage: string;
}

/** The candidate version of a kernel metapackage and the image package it depends on. */
async function candidateOf(metaPackage: string): Promise<Candidate | undefined> {
  const text = await aptCache(['show', '--no-all-versions', metaPackage]);
  const version = /^Version: (\S+)$/m.exec(text)?.[1];
  const imagePackage = /^Depends: (linux-image-\S+)/m.exec(text)?.[1];
  return version && imagePackage ? { version, imagePackage } : undefined;
}

function seriesOf(release: string): [number, number] {
  const match = RELEASE_SERIES.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

const newerSeries = (a: [number, number], b: [number, number]): boolean => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);

async function choice(label: KernelLabel, metaPackage: string): Promise<KernelChoice | undefined> {
  const candidate = await candidateOf(metaPackage);
  if (!candidate) return undefined;
  const release = candidate.imagePackage.slice(IMAGE_PREFIX.length);
  return { label, metaPackage, imagePackage: candidate.imagePackage, packageVersion: candidate.version, release };
}

/** The newest kernel series apt offers a metapackage for, if it is newer than `than`. */
async function newestSeries(than: [number, number]): Promise<string | undefined> {
  const listed = (await aptCache(['search', '--names-only', '^linux-image-[0-9]+\\.[0-9]+-amd64$']))
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => SERIES_META.test(name));
  let best: { name: string; series: [number, number] } | undefined;
  for (const name of listed) {
    const match = SERIES_META.exec(name)!;
    const series: [number, number] = [Number(match[1]), Number(match[2])];
    if (newerSeries(series, best?.series ?? than)) best = { name, series };
  }
  return best?.name;
}

export interface KernelPlan {
  kernels: KernelChoice[];
  /** What could not be had, said plainly in the summary. */
  notes: string[];
}

export async function chooseKernels(wanted: 'default' | 'newer' | 'all'): Promise<KernelPlan> {
  if ((await candidateOf(DEFAULT_META)) === undefined) await refreshPackageLists();
  const fallback = await choice('default', DEFAULT_META);
  if (!fallback) throw new Error(`apt offers no ${DEFAULT_META}: check the host's apt sources (Debian's main archive)`);
  const kernels: KernelChoice[] = [];
  const notes: string[] = [];
  if (wanted !== 'newer') kernels.push(fallback);
  if (wanted !== 'default') {
    const meta = await newestSeries(seriesOf(fallback.release));
    const newer = meta === undefined ? undefined : await choice('newer', meta);
    if (newer) kernels.push(newer);
    else
      notes.push(
        `apt offers no kernel series newer than ${fallback.release} here (no linux-image-X.Y-amd64 in its sources; Debian ships one in bookworm-backports): the memory.peak reset path (kernel ≥ 6.12) did not run`,
      );
  }
  return { kernels, notes };
}

function unpackedAt(choice: KernelChoice, dir: string): UnpackedKernel {
  return { ...choice, image: join(dir, 'boot', `vmlinuz-${choice.release}`), modulesDir: join(dir, 'lib', 'modules', choice.release) };
}

/** Fetches and unpacks a kernel package into `<cacheDir>/kernels/<release>`, once. */
export async function unpackKernel(choice: KernelChoice, cacheDir: string): Promise<UnpackedKernel> {
  const kernelsDir = join(cacheDir, 'kernels');
  const dir = join(kernelsDir, choice.release);
  if (existsSync(join(dir, COMPLETE_MARK))) return unpackedAt(choice, dir);
  mkdirSync(kernelsDir, { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  const work = mkdtempSync(join(kernelsDir, '.unpack-'));
  try {
    const download = ['download', '-o', 'APT::Sandbox::User=root', `${choice.imagePackage}=${choice.packageVersion}`];
    let fetched = await run('apt-get', download, { cwd: work, env: APT_ENV, timeoutMs: DOWNLOAD_TIMEOUT_MS });
    if (fetched.code !== 0) {
      // Lists older than the archive name a file it no longer has.
      await refreshPackageLists();
      fetched = await run('apt-get', download, { cwd: work, env: APT_ENV, timeoutMs: DOWNLOAD_TIMEOUT_MS });
      if (fetched.code !== 0) throw new Error(`apt-get download ${choice.imagePackage} failed: ${fetched.stderr.trim().slice(-1000)}`);
    }
    const deb = readdirSync(work).find((name) => name.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${choice.imagePackage} left no .deb in ${work}`);
    const root = join(work, 'root');
    await mustRun('dpkg-deb', ['-x', join(work, deb), root]);
    // Debian 13's packages ship /usr/lib/modules; depmod -b looks below lib/modules.
    if (!existsSync(join(root, 'lib', 'modules')) && existsSync(join(root, 'usr', 'lib', 'modules'))) {
      renameSync(join(root, 'usr', 'lib', 'modules'), join(root, 'lib', 'modules'));
    }
    await mustRun('depmod', ['-b', root, choice.release]);
    rmSync(join(work, deb));
    renameSync(root, dir);
    writeFileSync(join(dir, COMPLETE_MARK), `${choice.imagePackage} ${choice.packageVersion}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const unpacked = unpackedAt(choice, dir);
  if (!existsSync(unpacked.image)) throw new Error(`${choice.imagePackage} has no boot/vmlinuz-${choice.release}`);
  return unpacked;
}

/** Removes unpacked kernels that apt no longer names (a security update replaced them). */
export function pruneKernels(cacheDir: string, keep: readonly KernelChoice[]): void {
  const kernelsDir = join(cacheDir, 'kernels');
  if (!existsSync(kernelsDir)) return;
  const kept = new Set(keep.map((k) => k.release));
  for (const name of readdirSync(kernelsDir)) if (!kept.has(name)) rmSync(join(kernelsDir, name), { recursive: true, force: true });
}
