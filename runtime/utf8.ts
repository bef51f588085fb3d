/** Fatal: a byte sequence that is not UTF-8 is refused, never turned into U+FFFD behind the caller's back. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The text the bytes encode, or null when they are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}
