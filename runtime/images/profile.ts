import { z } from 'zod';
import { loadProfileFile } from '../profile-file.ts';

const absolutePath = z
  .string()
  .regex(/^\/[^\0]*$/, 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ..');

const bindSchema = z.strictObject({
  source: absolutePath,
  target: absolutePath,
  /** Skip quietly when the source is missing on this host (e.g. a JDK that isn't installed). */
  optional: z.boolean().default(false),
});

const base = {
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/),
  description: z.string().optional(),
  binds: z.array(bindSchema).default([]),
  /**
   * Paths inside the image the program must not see: a directory is covered
   * by an empty read-only tmpfs, a file by /dev/null; a path the image lacks
   * is skipped. For what a bind or the rootfs brings along that is not the
   * toolchain's (an admin's folder, a credentials file).
   */
  masks: z.array(absolutePath).default([]),
};

/**
 * An image is data: `host` exposes chosen host paths read-only over a
 * generated skeleton; `directory` uses any rootfs folder (debootstrap, an
 * exported container image) as the read-only lower layer.
 */
export const imageProfileSchema = z.discriminatedUnion('kind', [
  z.strictObject({ ...base, kind: z.literal('host') }),
  z.strictObject({ ...base, kind: z.literal('directory'), rootfs: absolutePath }),
]);

export type ImageProfile = z.infer<typeof imageProfileSchema>;

export function loadImageProfile(path: string): ImageProfile {
  return loadProfileFile(path, 'image', imageProfileSchema);
}
