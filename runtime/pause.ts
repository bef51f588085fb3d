import { setImmediate } from 'node:timers/promises';

/**
 * Lets the event loop turn between two slices of long work on untrusted
 * data (a 16 MiB output, the record that holds it), so that one run's
 * output never holds the loop for everyone else: I/O and timers run in the
 * pause. Work that takes one is written against this type, so that tests
 * can count the pauses.
 */
export type Pause = () => Promise<unknown>;

export const nextTurn: Pause = () => setImmediate();
