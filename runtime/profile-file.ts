import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError } from './errors.ts';

/**
 * Reads one JSON profile (an image, a language) and checks it against its
 * schema. Errors are ConfigErrors `<kind>_profile_unreadable` and
 * `<kind>_profile_invalid`, naming the file and the field.
 */
export function loadProfileFile<T>(path: string, kind: 'image' | 'language', schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new ConfigError(`${kind}_profile_unreadable`, `cannot read ${kind} profile ${path}: ${(cause as Error).message}`, { cause });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.');
    throw new ConfigError(`${kind}_profile_invalid`, `${kind} profile ${path}: ${field || '(root)'}: ${issue.message}`, { field });
  }
  return parsed.data;
}
