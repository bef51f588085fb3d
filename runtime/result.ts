import { nextTurn, type Pause } from './pause.ts';

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
 * loop (a few milliseconds of CPU here). An output may be 16 MiB, and
 * decoding and counting it in one go held the worker's event loop for 20 to
 * 50 ms, during which the API in the same process answered nobody.
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
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const texts: string[] = [];
  let bytes = 0;
  let extra = 0;
  let utf8 = true;
  for await (const slice of sliced(chunks, pause)) {
    const text = decodeSlice(decoder, slice);
    if (text === null) {
      utf8 = false;
      break;
    }
    texts.push(text);
    bytes += slice.length;
    extra += jsonEscapeExtraBytes(slice);
  }
  // The end: a sequence it cuts short is not UTF-8 either.
  const tail = utf8 ? decodeSlice(decoder, undefined) : null;
  if (tail !== null && extra <= bytes) return { [name]: texts.join('') + tail };
  return { [name]: await toBase64(chunks, pause), [`${name}Encoding`]: 'base64' };
}

/**
 * The chunks in slices of at most OUTPUT_SLICE_BYTES, pausing before a slice
 * that would take the bytes since the last pause past that.
 */
async function* sliced(chunks: readonly Buffer[], pause: Pause): AsyncGenerator<Buffer> {
  let sincePause = 0;
  for (const chunk of chunks) {
    for (let start = 0; start < chunk.length; start += OUTPUT_SLICE_BYTES) {
      const slice = chunk.subarray(start, start + OUTPUT_SLICE_BYTES);
      if (sincePause + slice.length > OUTPUT_SLICE_BYTES) {
        await pause();
        sincePause = 0;
      }
      sincePause += slice.length;
      yield slice;
    }
  }
}

/** The text of one slice, a sequence it starts kept for the next; null when it is not UTF-8. */
function decodeSlice(decoder: TextDecoder, slice: Buffer | undefined): string | null {
  try {
    return slice === undefined ? decoder.decode() : decoder.decode(slice, { stream: true });
  } catch {
    return null;
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
  for await (let slice of sliced(chunks, pause)) {
    if (carry.length > 0) {
      const group = Buffer.concat([carry, slice.subarray(0, BASE64_GROUP_BYTES - carry.length)]);
      slice = slice.subarray(group.length - carry.length);
      carry = group;
      if (group.length < BASE64_GROUP_BYTES) continue;
      pieces.push(group.toString('base64'));
    }
    const whole = slice.length - (slice.length % BASE64_GROUP_BYTES);
    pieces.push(slice.toString('base64', 0, whole));
    carry = slice.subarray(whole);
  }
  pieces.push(carry.toString('base64'));
  return pieces.join('');
}
