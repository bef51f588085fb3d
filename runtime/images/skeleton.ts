import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { INNER_GID, INNER_UID } from '../launcher/protocol.ts';

/** Top-level names that merged-/usr hosts make symlinks into /usr. */
const ROOT_LINK_CANDIDATES = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
const MOUNTPOINTS = ['box', 'tmp', 'proc', 'dev'];

/** Files the host image generates instead of exposing the host's own. */
function generatedFiles(): Record<string, string> {
  return {
    'etc/passwd': `root:x:0:0:root:/root:/usr/sbin/nologin\nbrig:x:${INNER_UID}:${INNER_GID}:brig:/box:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    'etc/group': `root:x:0:\nbrig:x:${INNER_GID}:\nnogroup:x:65534:\n`,
    'etc/hosts': '127.0.0.1\tlocalhost brig\n::1\tlocalhost ip6-localhost ip6-loopback\n',
    'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
    'etc/hostname': 'brig\n',
  };
}

export interface SkeletonSpec {
  /** Mirror the host's merged-/usr symlinks and generate /etc files (the host image). */
  host: boolean;
  /** Bind targets to pre-create, with whether each is a directory. */
  mountpoints: { path: string; directory: boolean }[];
}

/**
 * Builds the top lower layer of an image: every mount point the launcher
 * needs (it cannot create them later: inside the sandbox, a directory owned by
 * host root is unmapped, so not even the sandbox's root may write to it) and,
 * for the host image, the merged-/usr symlinks the host has and generated
 * /etc files. It is content-addressed: a changed layout gets a new folder and
 * running sandboxes keep the old one. Returns the folder and, on hosts
 * without merged /usr, the top-level directories that must be bound too.
 */
export function ensureSkeleton(imagesDir: string, spec: SkeletonSpec, hostRoot = '/'): { rootfs: string; extraBinds: string[] } {
  const links: Record<string, string> = {};
  const extraBinds: string[] = [];
  if (spec.host) {
    for (const name of ROOT_LINK_CANDIDATES) {
      const hostPath = join(hostRoot, name);
      if (!existsSync(hostPath)) continue;
      if (lstatSync(hostPath).isSymbolicLink()) links[name] = readlinkSync(hostPath);
      else extraBinds.push(`/${name}`);
    }
  }
  const files = spec.host ? generatedFiles() : {};
  const dirs = [...MOUNTPOINTS, ...extraBinds, ...spec.mountpoints.filter((m) => m.directory).map((m) => m.path)].map((p) =>
    p.replace(/^\/+/, ''),
  );
  const emptyFiles = spec.mountpoints.filter((m) => !m.directory).map((m) => m.path.replace(/^\/+/, ''));
  const digest = createHash('sha256').update(JSON.stringify({ links, files, dirs, emptyFiles })).digest('hex').slice(0, 16);
  const rootfs = join(imagesDir, `${spec.host ? 'host' : 'mountpoints'}-${digest}`);
  if (existsSync(rootfs)) return { rootfs, extraBinds };

  mkdirSync(imagesDir, { recursive: true, mode: 0o755 });
  const staging = `${rootfs}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { mode: 0o755 });
  for (const dir of dirs) mkdirSync(join(staging, dir), { recursive: true, mode: 0o755 });
  for (const [name, target] of Object.entries(links)) symlinkSync(target, join(staging, name));
  for (const name of emptyFiles) {
    mkdirSync(dirname(join(staging, name)), { recursive: true, mode: 0o755 });
    writeFileSync(join(staging, name), '', { mode: 0o644 });
  }
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(staging, name)), { recursive: true, mode: 0o755 }); // a profile need not bind anything under /etc
    writeFileSync(join(staging, name), content, { mode: 0o644 });
  }
  try {
    renameSync(staging, rootfs);
  } catch (error) {
    // Another worker made the same skeleton first: theirs is identical.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(rootfs)) throw error;
  }
  return { rootfs, extraBinds };
}
