/**
 * Mirror of runtime/launcher/protocol.h. test/unit/runtime/launcher/protocol.test.ts
 * parses the header and checks that every constant here matches it.
 */
export const FD_SECCOMP = 3;
export const FD_GO = 4;
export const FD_STATUS = 5;

/** The go message's bounds (launcher.c reads it into a buffer of this size). */
export const MAX_GO_BYTES = 2 * 1024 * 1024;
export const MAX_GO_WORDS = 4096;

export const EXIT_OK = 0;
export const EXIT_USAGE = 64;
export const EXIT_SETUP = 70;
export const EXIT_ABORTED = 71;

export const INNER_UID = 1000;
export const INNER_GID = 1000;

/** The constants above by their C names, for the parity test. */
export const HEADER_CONSTANTS: Record<string, number | string> = {
  BRIG_FD_SECCOMP: FD_SECCOMP,
  BRIG_FD_GO: FD_GO,
  BRIG_FD_STATUS: FD_STATUS,
  BRIG_MAX_GO_BYTES: MAX_GO_BYTES,
  BRIG_MAX_GO_WORDS: MAX_GO_WORDS,
  BRIG_EXIT_OK: EXIT_OK,
  BRIG_EXIT_USAGE: EXIT_USAGE,
  BRIG_EXIT_SETUP: EXIT_SETUP,
  BRIG_EXIT_ABORTED: EXIT_ABORTED,
  BRIG_INNER_UID: INNER_UID,
  BRIG_INNER_GID: INNER_GID,
};

export type StatusEvent =
  | { kind: 'ready'; initPid: number }
  | {
      kind: 'exit';
      exitCode: number | null;
      signal: number | null;
      wallUs: number | null;
      execNs: bigint | null;
      /** The largest resident set of a process init reaped (ru_maxrss); null when init did not report. */
      maxRssKb: number | null;
    }
  | { kind: 'error'; errno: number; text: string };

/** Parses one status line; null for a line that is not part of the protocol. */
export function parseStatusLine(line: string): StatusEvent | null {
  const [kind, ...fields] = line.split(' ');
  if (kind === 'ready' && fields.length === 1) {
    const initPid = toInt(fields[0]);
    return initPid === null ? null : { kind, initPid };
  }
  if (kind === 'exit' && fields.length === 5) {
    const [code, signal, wallUs] = fields.slice(0, 3).map(toInt);
    const execNs = INTEGER.test(fields[3]!) ? BigInt(fields[3]!) : null;
    const maxRssKb = toInt(fields[4]);
    if (code === null || signal === null || wallUs === null || execNs === null || maxRssKb === null) return null;
    return {
      kind,
      exitCode: code < 0 ? null : code,
      signal: signal === 0 ? null : signal,
      wallUs: wallUs < 0 ? null : wallUs,
      execNs: execNs < 0n ? null : execNs,
      maxRssKb: maxRssKb < 0 ? null : maxRssKb,
    };
  }
  if (kind === 'error' && fields.length >= 1) {
    const errno = toInt(fields[0]);
    return errno === null ? null : { kind, errno, text: fields.slice(1).join(' ') };
  }
  return null;
}

const INTEGER = /^-?\d{1,20}$/;

function toInt(text: string | undefined): number | null {
  if (text === undefined || !INTEGER.test(text)) return null;
  return Number(text);
}
