/// <reference lib="es2024.string" />
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
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is this pattern's purpose.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/** First characters that make a command-line argument an option or a response file. */
const OPTION_LIKE = new Set(['-', '@']);
/** A refused name is quoted in the message up to this length: the whole of a 2 MiB name helps nobody. */
const MAX_ECHOED_NAME_CHARS = 100;

function echoed(name: string): string {
  return name.length > MAX_ECHOED_NAME_CHARS ? `${JSON.stringify(name.slice(0, MAX_ECHOED_NAME_CHARS))}…` : JSON.stringify(name);
}

/**
 * Checks a submitted file name: well-formed Unicode in NFC, relative, no `..`
 * or `.` segments, no segment starting with - or @, no control characters,
 * sane lengths. Throws RequestError naming the field.
 *
 * A lone surrogate has no UTF-8 form: it would reach the disk as U+FFFD, so
 * that "\ud800" and "\udc00" became the same file. NFC is required because
 * the name on disk is its bytes: "é" (U+00E9) and "e" + U+0301 look the same
 * and would be two files; with every name in NFC, names that are equal after
 * normalisation are simply equal.
 */
export function checkFileName(name: string, field: string): void {
  const fail = (why: string): never => {
    throw new RequestError('file_name_invalid', `file name ${echoed(name)} ${why}`, { field });
  };
  if (name.length === 0) fail('is empty');
  // Lengths first: the checks after them never see more than MAX_PATH_BYTES.
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) fail(`is longer than ${MAX_PATH_BYTES} bytes`);
  if (!name.isWellFormed())
    fail('is not well-formed Unicode: it has a lone surrogate (\\ud800-\\udfff without its pair); send the name as valid UTF-8');
  if (name.normalize('NFC') !== name) fail('is not in Unicode NFC: send it normalised (NFC), the form the name has on disk');
  if (CONTROL_CHARS.test(name)) fail('contains NUL or a control character');
  if (name.startsWith('/')) fail('must be relative, not start with /');
  if (name.includes('\\')) fail('must use / as the separator');
  for (const segment of name.split('/')) {
    if (segment === '') fail('has an empty path segment');
    if (segment === '.' || segment === '..') fail('must not contain . or .. segments');
    // A tool given this name would read it as an option (-o…) or a file of options (gcc's and javac's @file).
    if (OPTION_LIKE.has(segment[0]!)) fail(`must not start a name or folder with ${segment[0]}: tools would read it as an option`);
    if (Buffer.byteLength(segment) > MAX_NAME_BYTES) fail(`has a segment longer than ${MAX_NAME_BYTES} bytes`);
  }
}

/**
 * Checks every name and that no two files share one (or one is another's
 * directory). Names are NFC after checkFileName, so equal after
 * normalisation means equal here.
 */
export function checkFiles(files: SubmissionFile[], field = 'files'): void {
  const seen = new Set<string>();
  files.forEach((file, index) => {
    checkFileName(file.name, `${field}[${index}].name`);
    if (seen.has(file.name)) {
      throw new RequestError('file_name_duplicate', `file name ${echoed(file.name)} appears twice`, { field: `${field}[${index}].name` });
    }
    seen.add(file.name);
  });
  for (const name of seen) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) {
        throw new RequestError('file_name_conflict', `file name ${echoed(dir)} is also used as a directory`, { field });
      }
    }
  }
}
