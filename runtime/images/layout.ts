import { existsSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { ConfigError } from '../errors.ts';
import type { ImageProfile } from './profile.ts';
import { ensureSkeleton } from './skeleton.ts';

/** What the launcher needs to build an image's root: overlay lower layers (top first), read-only binds, and paths to mask. */
export interface ImageLayout {
  name: string;
  lowers: string[];
  binds: { source: string; target: string }[];
  /** Paths inside the image that the launcher hides once the root is built. */
  masks: string[];
}

const MAX_SYMLINK_HOPS = 40;

export function layoutImage(profile: ImageProfile, imagesDir: string): ImageLayout {
  const binds = profile.binds
    .filter((b) => {
      if (existsSync(b.source)) return true;
      if (b.optional) return false;
      throw new ConfigError('image_bind_missing', `image ${profile.name}: bind source ${b.source} does not exist on this host`, {
        field: 'binds',
      });
    })
    .map(({ source, target }) => ({ source, target }));
  const mountpoints = binds.map((b) => ({ path: b.target, directory: statSync(b.source).isDirectory() }));
  if (profile.kind === 'directory') {
    if (!existsSync(profile.rootfs) || !lstatSync(profile.rootfs).isDirectory()) {
      throw new ConfigError('image_rootfs_missing', `image ${profile.name}: rootfs ${profile.rootfs} is not a directory`, {
        field: 'rootfs',
      });
    }
    const skeleton = ensureSkeleton(imagesDir, { host: false, mountpoints });
    return { name: profile.name, lowers: [skeleton.rootfs, profile.rootfs], binds, masks: profile.masks };
  }
  const skeleton = ensureSkeleton(imagesDir, { host: true, mountpoints });
  return {
    name: profile.name,
    lowers: [skeleton.rootfs],
    binds: [...skeleton.extraBinds.map((p) => ({ source: p, target: p })), ...binds],
    masks: profile.masks,
  };
}

/**
 * Where a path inside the image lives on the host, following symlinks the way
 * the sandbox would see them (absolute targets resolve inside the image).
 * Null when the image has no such file, or masks it. Used to tell whether a
 * toolchain is present without starting a sandbox.
 */
export function resolveInImage(image: ImageLayout, path: string): string | null {
  let current = posix.normalize(path);
  for (let hop = 0; hop < MAX_SYMLINK_HOPS; hop++) {
    const parts = current.split('/').filter(Boolean);
    let resolvedLink = false;
    for (let i = 1; i <= parts.length; i++) {
      const prefix = `/${parts.slice(0, i).join('/')}`;
      const host = hostPathOf(image, prefix);
      if (host === null) return null;
      const stat = lstatSync(host, { throwIfNoEntry: false });
      if (!stat) return null;
      if (stat.isSymbolicLink()) {
        const target = readlinkSync(host);
        const base = target.startsWith('/') ? target : posix.join(posix.dirname(prefix), target);
        current = posix.normalize(posix.join(base, ...parts.slice(i)));
        resolvedLink = true;
        break;
      }
      if (i === parts.length) return host;
    }
    if (!resolvedLink) return hostPathOf(image, current);
  }
  return null;
}

function hostPathOf(image: ImageLayout, path: string): string | null {
  if (image.masks.some((m) => path === m || path.startsWith(`${m}/`))) return null;
  const bind = image.binds
    .filter((b) => path === b.target || path.startsWith(`${b.target}/`))
    .sort((a, b) => b.target.length - a.target.length)[0];
  if (bind) return bind.source + path.slice(bind.target.length);
  for (const lower of image.lowers) {
    const host = lower + path;
    if (lstatSync(host, { throwIfNoEntry: false })) return host;
  }
  return null;
}
