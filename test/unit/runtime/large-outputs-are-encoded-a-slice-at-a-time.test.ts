/**
 * A 16 MiB output is decoded, counted and (when it is not UTF-8) turned into
 * base64 a slice at a time, the event loop turning in between, so that one
 * run's output never holds the worker's loop (and the API in the same
 * process) for everyone. The pieces must still give exactly what the whole
 * output would: however the pipe cut it into chunks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeOutput, jsonEscapeExtraBytes, OUTPUT_SLICE_BYTES } from '../../../runtime/result.ts';

/** What the output is as one piece: text when it is UTF-8 and its escapes at most double it, else base64. */
function encodedWhole(bytes: Buffer): { stdout: string; stdoutEncoding?: 'base64' } {
  let text: string | null;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    text = null;
  }
  if (text !== null && jsonEscapeExtraBytes(bytes) <= bytes.length) return { stdout: text };
  return { stdout: bytes.toString('base64'), stdoutEncoding: 'base64' };
}

/** The bytes cut at the given places (sorted, within the length). */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, p));
    start = p;
  }
  return chunks;
}

const noPause = async () => {};

test('an output cut into any chunks encodes exactly as the whole: UTF-8 split mid-character, invalid bytes, escape-heavy text', async () => {
  const text = fc
    .array(
      fc.oneof(fc.constantFrom('é', '😀', '\u2028', '\ufeff', '\n', '"', '\\', '\x01', 'a'), fc.string({ maxLength: 3, unit: 'grapheme' })),
      {
        maxLength: 40,
      },
    )
    .map((parts) => Buffer.from(parts.join('')));
  const bytes = fc.oneof(
    text,
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  );
  await fc.assert(
    fc.asyncProperty(bytes, fc.array(fc.nat(), { maxLength: 8 }), async (whole, at) => {
      assert.deepEqual(await encodeOutput('stdout', cut(whole, at), noPause), encodedWhole(whole));
    }),
    { numRuns: 3000 },
  );
});

test('a byte order mark is kept, at the start of an output as anywhere else: no byte is dropped', async () => {
  for (const text of ['\ufeffhello\n', 'a\ufeffb', '\ufeff']) {
    const bytes = Buffer.from(text);
    assert.deepEqual(await encodeOutput('stdout', [bytes], noPause), { stdout: text });
    assert.deepEqual(await encodeOutput('stdout', cut(bytes, [1, 2]), noPause), { stdout: text }, 'cut inside the mark');
  }
});

test('base64 of an output in chunks of every length joins into the one encoding of the whole', async () => {
  const whole = Buffer.from(Array.from({ length: 50 }, (_, i) => (i * 37 + 0x80) & 0xff));
  for (let size = 1; size <= 7; size++) {
    const chunks = Array.from({ length: Math.ceil(whole.length / size) }, (_, i) => whole.subarray(i * size, (i + 1) * size));
    const encoded = await encodeOutput('stdout', chunks, noPause);
    assert.equal(encoded.stdoutEncoding, 'base64');
    assert.equal(encoded.stdout, whole.toString('base64'), `chunks of ${size}`);
  }
});

test('a large output lets the event loop turn after each slice, and a small one never waits for it', async () => {
  let pauses = 0;
  const counting = async () => {
    pauses++;
  };
  const pipeChunk = 64 << 10;
  const lines = Buffer.alloc(5 * OUTPUT_SLICE_BYTES, 'twelve bytes\n');
  const inPipeChunks = Array.from({ length: lines.length / pipeChunk }, (_, i) => lines.subarray(i * pipeChunk, (i + 1) * pipeChunk));
  assert.equal((await encodeOutput('stdout', inPipeChunks, counting)).stdout, lines.toString());
  assert.equal(pauses, 4, 'a pause between each two of the five slices');

  // One chunk larger than a slice is sliced all the same; so is base64 (after the slices that found the bytes not UTF-8).
  pauses = 0;
  const binary = Buffer.alloc(3 * OUTPUT_SLICE_BYTES, 0xff);
  const encoded = await encodeOutput('stdout', [binary], counting);
  assert.equal(encoded.stdoutEncoding, 'base64');
  assert.equal(encoded.stdout, binary.toString('base64'));
  assert.equal(pauses, 2, 'none before the first slice decoded, two while encoding the three slices as base64');

  pauses = 0;
  await encodeOutput('stdout', [Buffer.alloc(OUTPUT_SLICE_BYTES, 'a')], counting);
  await encodeOutput('stdout', [Buffer.from('hello world\n')], counting);
  assert.equal(pauses, 0);
});
