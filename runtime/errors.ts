/**
 * Typed errors of the runtime. Each has a stable `code` that callers (the CLI,
 * the HTTP layer) map to exit codes or HTTP answers in exactly one place.
 *
 * Two kinds of failure, as in isolate: a SandboxError means Brig itself failed
 * to run the program (retry, count, alert). A program that crashes, times out
 * or runs out of memory is *not* an error: it is an ordinary result with a verdict.
 */
export class BrigError extends Error {
  readonly code: string;
  readonly field?: string;
  constructor(code: string, message: string, options?: { cause?: unknown; field?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.field = options?.field;
  }
}

/** A configuration or profile (seccomp, language, image) is invalid. Fatal at startup. */
export class ConfigError extends BrigError {}

/** The host lacks something the runtime needs (a kernel feature, a binary, a library). */
export class HostError extends BrigError {}

/** The sandbox could not be built or torn down: Brig's fault, never the program's. */
export class SandboxError extends BrigError {}

/** The caller asked for something invalid (unknown language, limit over the maximum, bad file name). */
export class RequestError extends BrigError {}

/** A language is described but its toolchain is missing from the image. */
export class LanguageUnavailableError extends BrigError {}

/** The caller cancelled the step; its sandbox was killed. */
export class CancelledError extends BrigError {
  constructor(message = 'the run was cancelled') {
    super('cancelled', message);
  }
}
