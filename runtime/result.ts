import { nextTurn, type Pause } from './pause.ts';
import { decodeUtf8 } from './utf8.ts';

/**
 * What one sandboxed step (compile or run) produced: always a program's
 * outcome. Brig's own failures are never a verdict here: they are thrown
 * (SandboxError), and only a run as a whole can end internal_error.
 */
export type Verdict = 'ok' | 'runtime_error' | 'time_limit' | 'memory_limit' | 'output_limit';

export interface StepResult {
  /** UTF-8 text, or base64 when the bytes are not valid UTF-8 (then stdoutEncoding is 'base64'). */
  stdout: string;
  stderr: string;
  stdoutEncoding?: 'base64';
  stderrEncoding?: 'base64';
  /** Exit status when the program exited; null when a signal ended it. */
  exitCode: number | null;
  /** Signal number that ended the program, or null. */
  signal: number | null;
  verdict: Verdict;
  /** CPU time of every process of the step, from the cgroup. */
  cpuMs: number;
  wallMs: number;
  /**
   * Peak memory of the step's cgroup above its level at the program's start
   * (anonymous memory, page cache and tmpfs it added). The kernel charges in
   * per-CPU batches of up to 64 pages, so a small program can read 0.
   */
  memoryKb: number;
  /** The largest resident set of one of the step's processes (ru_maxrss), shared library pages included; 0 when unknown. */
  maxRssKb: number;
  /** True when stdout or stderr was cut at the output limit. */
  truncated: boolean;
}

/** Kernel facts about how a step ended, from which the verdict is derived. */
export interface StepFacts {
  exitCode: number | null;
  signal: number | null;
  cpuMs: number;
  wallMs: number;
  oomKills: number;
  /** Why the runtime itself killed the step, if it did. */
  killedFor: 'time_limit' | 'output_limit' | 'cancelled' | null;
  cpuLimitMs: number;
  wallLimitMs: number;
}

/**
 * The verdict comes from what the kernel counted, never from guessing at exit
 * codes: the cgroup's own OOM-kill counter, measured CPU and wall time, and the
 * runtime's record of why it killed the step.
 */
export function classify(f: StepFacts): Verdict {
  if (f.killedFor === 'output_limit') return 'output_limit';
  if (f.oomKills > 0) return 'memory_limit';
  if (f.killedFor === 'time_limit' || f.cpuMs >= f.cpuLimitMs || f.wallMs >= f.wallLimitMs) return 'time_limit';
  if (f.signal !== null || f.exitCode !== 0) return 'runtime_error';
  return 'ok';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const FIRST_PRINTABLE = 0x20;
/** Control characters JSON writes as \n, \t and the like; the others take \u00XX. */
const SHORT_ESCAPES = new Set([0x08, 0x09, 0x0a, 0x0c, 0x0d]);
const SHORT_ESCAPE_EXTRA_BYTES = 1;
const UNICODE_ESCAPE_EXTRA_BYTES = 5;

/** The bytes JSON's escape adds to one byte of a UTF-8 text. */
function escapeExtraBytes(byte: number): number {
  if (byte === QUOTE || byte === BACKSLASH) return SHORT_ESCAPE_EXTRA_BYTES;
  if (byte < FIRST_PRINTABLE) return SHORT_ESCAPES.has(byte) ? SHORT_ESCAPE_EXTRA_BYTES : UNICODE_ESCAPE_EXTRA_BYTES;
  return 0;
}

const BYTES_PER_WORD = 4;
const EACH_BYTE = 0x01010101;
const HIGH_BITS = 0x80808080;

/**
 * The bytes JSON's escapes add to a UTF-8 text, counted in one pass. Four
 * bytes at a time where the memory allows: a word with no byte below 0x20,
 * no quote and no backslash (the usual one) adds nothing, and only the
 * others are looked at byte by byte. An output may be 16 MiB: for 15 MiB a
 * byte loop held the worker's event loop 29 ms (one long line) to 42 ms
 * (12-character lines), this 10 to 37 ms.
 */
export function jsonEscapeExtraBytes(bytes: Buffer): number {
  let extra = 0;
  let i = 0;
  const head = Math.min(bytes.length, (BYTES_PER_WORD - (bytes.byteOffset % BYTES_PER_WORD)) % BYTES_PER_WORD);
  for (; i < head; i++) extra += escapeExtraBytes(bytes[i]!);
  // Unless the text ended before a word boundary (a typed array must start on one).
  if ((bytes.byteOffset + i) % BYTES_PER_WORD === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, (bytes.length - i) >>> 2);
    for (let w = 0; w < words.length; w++, i += BYTES_PER_WORD) {
      const word = words[w]!;
      // The classic tests of "some byte is below n" and "some byte is zero": never a miss, at worst a needless look.
      const below = (word - FIRST_PRINTABLE * EACH_BYTE) & ~word;
      const quote = ((word ^ (QUOTE * EACH_BYTE)) - EACH_BYTE) & ~(word ^ (QUOTE * EACH_BYTE));
      const backslash = ((word ^ (BACKSLASH * EACH_BYTE)) - EACH_BYTE) & ~(word ^ (BACKSLASH * EACH_BYTE));
      if (((below | quote | backslash) & HIGH_BITS) === 0) continue;
      for (let k = 0; k < BYTES_PER_WORD; k++) extra += escapeExtraBytes(bytes[i + k]!);
    }
  }
  for (; i < bytes.length; i++) extra += escapeExtraBytes(bytes[i]!);
  return extra;
}

/**
 * How much output is decoded and counted between two turns of the event
 * loop (a few milliseconds of CPU here). An output may be 16 MiB: copied
 * into one buffer, then decoded and counted in one go, 15 MiB took 30 to
 * 57 ms of the worker's event loop (in a CPU profile), during which the API
 * in the same process answered nobody.
 */
export const OUTPUT_SLICE_BYTES = 1 << 20;

/**
 * Output as JSON can carry it: text when it is valid UTF-8, else base64 and a
 * marker, so that no byte is lost or replaced behind the caller's back. Text
 * whose escapes would more than double it (mostly control characters) goes
 * as base64 too, so that an output never takes more than twice its size in
 * a record: the service reserves Redis memory on that bound.
 *
 * Takes the output as the chunks it arrived in (a pipe's, up to 64 KiB):
 * they are decoded one after another, never copied into one buffer first,
 * and the event loop turns after each OUTPUT_SLICE_BYTES. An output under
 * that size is encoded without a pause.
 */
export async function encodeOutput(
  name: 'stdout' | 'stderr',
  chunks: readonly Buffer[],
  pause: Pause = nextTurn,
): Promise<Partial<StepResult>> {
  const texts: string[] = [];
  let bytes = 0;
  let extra = 0;
  // A sequence the last slice ended in the middle of, to be completed from the next.
  let held: Buffer | null = null;
  let utf8 = true;
  for (const { slice, pauseFirst } of pacedSlices(chunks)) {
    if (pauseFirst) await pause();
    bytes += slice.length;
    extra += jsonEscapeExtraBytes(slice);
    let rest = slice;
    if (held !== null) {
      const topped = topUp(held, slice, sequenceBytes(held[0]!));
      rest = topped.rest;
      held = topped.group;
      if (held.length < sequenceBytes(held[0]!)) continue;
      const text = decodeUtf8(held);
      held = null;
      if (text === null) {
        utf8 = false;
        break;
      }
      texts.push(text);
    }
    const whole = completeSequencesEnd(rest);
    const text = decodeUtf8(rest.subarray(0, whole));
    if (text === null) {
      utf8 = false;
      break;
    }
    texts.push(text);
    if (whole < rest.length) held = rest.subarray(whole);
  }
  // An output that ends in the middle of a sequence is not UTF-8 either.
  if (utf8 && held === null && extra <= bytes) return { [name]: texts.join('') };
  return { [name]: await toBase64(chunks, pause), [`${name}Encoding`]: 'base64' };
}

/**
 * The bytes carried over from the last slice, completed to size from the
 * start of this one (shorter when this slice is), and what is left of it.
 */
function topUp(carry: Buffer, slice: Buffer, size: number): { group: Buffer; rest: Buffer } {
  const group = Buffer.concat([carry, slice.subarray(0, size - carry.length)]);
  return { group, rest: slice.subarray(group.length - carry.length) };
}

/** The longest UTF-8 sequence: a slice's last three bytes may start one that the next slice ends. */
const MAX_SEQUENCE_BYTES = 4;
const FIRST_LEAD_BYTE = 0xc0;
const FIRST_THREE_BYTE_LEAD = 0xe0;
const FIRST_FOUR_BYTE_LEAD = 0xf0;

/** How many bytes the sequence a lead byte starts takes (a byte that leads none: the decoder refuses it). */
function sequenceBytes(lead: number): number {
  if (lead < FIRST_LEAD_BYTE) return 1;
  return lead >= FIRST_FOUR_BYTE_LEAD ? 4 : lead >= FIRST_THREE_BYTE_LEAD ? 3 : 2;
}

/**
 * Where a slice's complete sequences end: before a sequence its last bytes
 * start and the next slice ends, else at its end. Each slice is then
 * decoded on its own, by the decoder's one-shot path (a streaming decoder
 * took twice as long here), and is valid exactly when the whole is.
 */
function completeSequencesEnd(slice: Buffer): number {
  for (let i = slice.length - 1; i >= 0 && i > slice.length - MAX_SEQUENCE_BYTES; i--) {
    const byte = slice[i]!;
    if (byte < ASCII_END) return slice.length;
    if (byte >= FIRST_LEAD_BYTE) return i + sequenceBytes(byte) > slice.length ? i : slice.length;
  }
  return slice.length;
}

const ASCII_END = 0x80;

/**
 * The chunks in slices of at most OUTPUT_SLICE_BYTES, each marked to be
 * preceded by a pause when it would take the bytes since the last pause
 * past that. A generator of its own, not an async one: an output of a few
 * bytes (nearly every step) waits for no promise.
 */
function* pacedSlices(chunks: readonly Buffer[]): Generator<{ slice: Buffer; pauseFirst: boolean }> {
  let sincePause = 0;
  for (const chunk of chunks) {
    for (let start = 0; start < chunk.length; start += OUTPUT_SLICE_BYTES) {
      const slice = chunk.subarray(start, start + OUTPUT_SLICE_BYTES);
      const pauseFirst = sincePause + slice.length > OUTPUT_SLICE_BYTES;
      sincePause = pauseFirst ? slice.length : sincePause + slice.length;
      yield { slice, pauseFirst };
    }
  }
}

const BASE64_GROUP_BYTES = 3;

/**
 * Base64 of the chunks as one byte string, a slice at a time: each slice but
 * the last is encoded in whole groups of three bytes, the rest carried over
 * to the next, so that the pieces join into exactly the one encoding.
 */
async function toBase64(chunks: readonly Buffer[], pause: Pause): Promise<string> {
  const pieces: string[] = [];
  let carry: Buffer = Buffer.alloc(0);
  for (const paced of pacedSlices(chunks)) {
    if (paced.pauseFirst) await pause();
    let slice = paced.slice;
    if (carry.length > 0) {
      const topped = topUp(carry, slice, BASE64_GROUP_BYTES);
      slice = topped.rest;
      carry = topped.group;
      if (carry.length < BASE64_GROUP_BYTES) continue;
      pieces.push(carry.toString('base64'));
    }
    const whole = slice.length - (slice.length % BASE64_GROUP_BYTES);
    pieces.push(slice.toString('base64', 0, whole));
    carry = slice.subarray(whole);
  }
  pieces.push(carry.toString('base64'));
  return pieces.join('');
}
