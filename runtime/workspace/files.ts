import { RequestError } from '../errors.ts';

/** One submitted file: a path relative to the working dir, and its bytes. */
export interface SubmissionFile {
  name: string;
  content: Buffer;
}

const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 1024;
// Control characters and NUL have no business in a source file name and can
// confuse logs, terminals and the kernel's own path handling.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Checks a submitted file name: relative, no `..` or `.` segments, no control
 * characters, sane lengths. Throws RequestError naming the field.
 */
export function checkFileName(name: string, field: string): void {
  const fail = (why: string): never => {
    throw new RequestError('file_name_invalid', `file name ${JSON.stringify(name)} ${why}`, { field });
  };
  if (name.length === 0) fail('is empty');
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) fail(`is longer than ${MAX_PATH_BYTES} bytes`);
  if (CONTROL_CHARS.test(name)) fail('contains NUL or a control character');
  if (name.startsWith('/')) fail('must be relative, not start with /');
  if (name.includes('\\')) fail('must use / as the separator');
  for (const segment of name.split('/')) {
    if (segment === '') fail('has an empty path segment');
    if (segment === '.' || segment === '..') fail('must not contain . or .. segments');
    if (Buffer.byteLength(segment) > MAX_NAME_BYTES) fail(`has a segment longer than ${MAX_NAME_BYTES} bytes`);
  }
}

/** Checks every name and that no two files share one (or one is another's directory). */
export function checkFiles(files: SubmissionFile[], field = 'files'): void {
  const seen = new Set<string>();
  files.forEach((file, index) => {
    checkFileName(file.name, `${field}[${index}].name`);
    if (seen.has(file.name)) {
      throw new RequestError('file_name_duplicate', `file name ${JSON.stringify(file.name)} appears twice`, { field: `${field}[${index}].name` });
    }
    seen.add(file.name);
  });
  for (const name of seen) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) {
        throw new RequestError('file_name_conflict', `file name ${JSON.stringify(dir)} is also used as a directory`, { field });
      }
    }
  }
}
