/**
 * Canonical base64 (RFC 4648 §4, no line breaks): whole quads, '=' padding
 * only at the end, and the bits that padding drops are zero, so each byte
 * string has exactly one encoding. The same rule as BASE64_PATTERN in
 * schemas.ts, which the OpenAPI document shows; this is the one the API
 * runs. A backtracking regex over a body-sized string needs a backtrack
 * entry per quad, and V8 throws RangeError past a few MiB: this is one pass,
 * no allocation.
 */

/** Char code → 6-bit value, or -1 outside the alphabet. */
const SEXTET = new Int8Array(128).fill(-1);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
for (let i = 0; i < ALPHABET.length; i++) SEXTET[ALPHABET.charCodeAt(i)] = i;

const PAD = '='.charCodeAt(0);
const QUAD = 4;
// The last sextet before the padding carries bits that no byte uses: 'xxx=' is
// 2 bytes in 18 bits (2 spare), 'xx==' is 1 byte in 12 bits (4 spare).
const SPARE_BITS_ONE_PAD = 0b11;
const SPARE_BITS_TWO_PADS = 0b1111;

function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code < SEXTET.length ? SEXTET[code]! : -1;
}

export function isCanonicalBase64(text: string): boolean {
  if (text.length % QUAD !== 0) return false;
  const padding = text.charCodeAt(text.length - 1) === PAD ? (text.charCodeAt(text.length - 2) === PAD ? 2 : 1) : 0;
  const dataChars = text.length - padding;
  for (let i = 0; i < dataChars; i++) if (sextet(text, i) < 0) return false;
  if (padding === 1) return (sextet(text, dataChars - 1) & SPARE_BITS_ONE_PAD) === 0;
  if (padding === 2) return (sextet(text, dataChars - 1) & SPARE_BITS_TWO_PADS) === 0;
  return true;
}
