/** Exit codes of the brig command, documented in the README and in --help. */
export const EXIT = {
  /** The command worked (for `run`: the sandbox worked, whatever the program's verdict). */
  OK: 0,
  /** Brig itself failed: the sandbox could not be built or torn down, or a doctor check failed. */
  FAILURE: 1,
  /** Bad usage: unknown option, unreadable file, unknown language, limit over the maximum. */
  USAGE: 2,
  /** The host is not ready: not root, missing kernel feature, launcher, library or invalid profile. */
  HOST: 3,
} as const;
