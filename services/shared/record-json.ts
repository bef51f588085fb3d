import { randomBytes } from 'node:crypto';
import { nextTurn, type Pause } from '../../runtime/pause.ts';

/**
 * How many characters of a string are escaped between two turns of the
 * event loop (about a millisecond of CPU here). A final record holds the
 * outputs, up to 16 MiB, and JSON.stringify of such a record, then ioredis
 * turning the string into bytes, held the worker's event loop for ~50 ms
 * in one go: the API in the same process answered nobody meanwhile.
 */
export const JSON_SLICE_CHARS = 1 << 19;

const UNGUESSABLE_BYTES = 16;

/**
 * A value's JSON, exactly as JSON.stringify writes it. When no string in it
 * reaches JSON_SLICE_CHARS (nearly every record), that is the string
 * JSON.stringify returns. Otherwise it is the UTF-8 bytes, built with each
 * long string escaped a slice at a time and the event loop turning between
 * slices; the rest of the value is encoded in one go with those strings
 * stood in for by a marker that nothing in the value can contain (random,
 * and checked: should it occur anyway, the value is encoded in one go).
 */
export async function jsonOf(value: object, pause: Pause = nextTurn): Promise<string | Buffer> {
  if (!hasLongString(value)) return JSON.stringify(value);
  const marker = `\u0000${randomBytes(UNGUESSABLE_BYTES).toString('hex')}`;
  const long: string[] = [];
  const skeleton = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'string' || v.length < JSON_SLICE_CHARS) return v;
    long.push(v);
    return marker;
  });
  const between = skeleton.split(JSON.stringify(marker));
  if (between.length !== long.length + 1) return JSON.stringify(value);
  // The escaped pieces as strings first, then written once into one buffer:
  // a buffer per piece and their concatenation would copy the output once more.
  const pieces: string[] = [between[0]!];
  for (const [i, text] of long.entries()) {
    pieces.push('"');
    for (let start = 0; start < text.length; ) {
      await pause();
      const end = sliceEnd(text, start);
      pieces.push(JSON.stringify(text.slice(start, end)).slice(1, -1));
      start = end;
    }
    pieces.push('"', between[i + 1]!);
  }
  let bytes = 0;
  for (const piece of pieces) bytes += Buffer.byteLength(piece);
  const json = Buffer.allocUnsafe(bytes);
  for (let at = 0, pausedAt = 0; pieces.length > 0; ) {
    if (at - pausedAt >= JSON_SLICE_CHARS) {
      await pause();
      pausedAt = at;
    }
    at += json.write(pieces.shift()!, at);
  }
  return json;
}

/**
 * Where the slice from start ends: never between the two halves of a
 * surrogate pair, which JSON.stringify of each slice would escape as two
 * lone surrogates where the whole string keeps the character.
 */
function sliceEnd(text: string, start: number): number {
  const end = Math.min(text.length, start + JSON_SLICE_CHARS);
  return end < text.length && isHighSurrogate(text.charCodeAt(end - 1)) ? end - 1 : end;
}

const HIGH_SURROGATE_FIRST = 0xd800;
const HIGH_SURROGATE_LAST = 0xdbff;

function isHighSurrogate(code: number): boolean {
  return code >= HIGH_SURROGATE_FIRST && code <= HIGH_SURROGATE_LAST;
}

/** Whether some string in the value (its keys aside) reaches JSON_SLICE_CHARS: a walk of the value, not of its text. */
function hasLongString(value: unknown): boolean {
  if (typeof value === 'string') return value.length >= JSON_SLICE_CHARS;
  if (typeof value !== 'object' || value === null) return false;
  for (const v of Array.isArray(value) ? value : Object.values(value)) if (hasLongString(v)) return true;
  return false;
}
