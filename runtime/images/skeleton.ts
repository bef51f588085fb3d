import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INNER_GID, INNER_UID } from '../launcher/protocol.ts';

/** Top-level names that merged-/usr hosts make symlinks into /usr. */
const ROOT_LINK_CANDIDATES = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
const MOUNTPOINTS = ['box', 'tmp', 'proc', 'dev', 'usr', 'etc'];

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

/**
 * Builds the lower layer of the host image: empty mount points, the
 * merged-/usr symlinks the host has, and generated /etc files. It is
 * content-addressed, so a changed layout gets a new folder and running
 * sandboxes keep the old one. Returns the folder and the host top-level
 * directories (non-merged-/usr hosts) that must be bound too.
 */
export function ensureHostSkeleton(imagesDir: string, hostRoot = '/'): { rootfs: string; extraBinds: string[] } {
  const links: Record<string, string> = {};
  const extraBinds: string[] = [];
  for (const name of ROOT_LINK_CANDIDATES) {
    const hostPath = join(hostRoot, name);
    if (!existsSync(hostPath)) continue;
    if (lstatSync(hostPath).isSymbolicLink()) links[name] = readlinkSync(hostPath);
    else extraBinds.push(`/${name}`);
  }
  const files = generatedFiles();
  const digest = createHash('sha256').update(JSON.stringify({ links, files, MOUNTPOINTS, extraBinds })).digest('hex').slice(0, 16);
  const rootfs = join(imagesDir, `host-${digest}`);
  if (existsSync(rootfs)) return { rootfs, extraBinds };

  mkdirSync(imagesDir, { recursive: true, mode: 0o755 });
  const staging = `${rootfs}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { mode: 0o755 });
  for (const dir of [...MOUNTPOINTS, ...extraBinds.map((p) => p.slice(1))]) mkdirSync(join(staging, dir), { recursive: true, mode: 0o755 });
  for (const [name, target] of Object.entries(links)) symlinkSync(target, join(staging, name));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(staging, name), content, { mode: 0o644 });
  try {
    renameSync(staging, rootfs);
  } catch (error) {
    // Another worker made the same skeleton first: theirs is identical.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(rootfs)) throw error;
  }
  return { rootfs, extraBinds };
}
