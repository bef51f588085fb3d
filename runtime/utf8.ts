/**
 * Fatal: a byte sequence that is not UTF-8 is refused, never turned into
 * U+FFFD behind the caller's back. A byte order mark is kept as the
 * character it is (the decoder's default drops one at the start): an
 * output, or an expected output, loses no byte.
 */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text the bytes encode, or null when they are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}
