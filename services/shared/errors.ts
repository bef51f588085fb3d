import { BrigError } from '../../runtime/errors.ts';

/**
 * Every error code the HTTP API answers with, and its status: the one table
 * (as in fastify's lib/errors.js). Errors thrown anywhere carry only a code;
 * the API's error middleware looks the status up here. Codes thrown by the
 * runtime's checks (limits, file names) are listed too, so they need no
 * translation on the way out.
 */
export const ERROR_CODES = {
  request_invalid: {
    status: 400,
    description: 'the request does not match the schema; field is the JSON path of the first offending value',
  },
  body_invalid_json: { status: 400, description: 'the body is not valid JSON in UTF-8' },
  body_invalid_encoding: { status: 400, description: 'the body is not the gzip or deflate data its Content-Encoding says' },
  body_too_large: { status: 413, description: 'the body is over the server limit (BRIG_BODY_LIMIT_BYTES)' },
  content_type_unsupported: { status: 415, description: 'the body must be sent as application/json' },
  content_encoding_unsupported: { status: 415, description: "the body's Content-Encoding is not identity, gzip or deflate" },
  request_malformed: {
    status: 400,
    description: 'the HTTP request cannot be parsed (request line, headers or body framing); the connection is closed',
  },
  request_timeout: { status: 408, description: "the request's headers or body did not arrive in time; the connection is closed" },
  headers_too_large: {
    status: 431,
    description: "the request line and headers are over the server's limit (Node's --max-http-header-size, 16 KiB by default)",
  },
  expectation_unsupported: { status: 417, description: 'the Expect header asks for something other than 100-continue' },
  path_invalid: {
    status: 400,
    description: 'the URL path has malformed percent-encoding: a % without two hex digits, or bytes that are not UTF-8',
  },
  unauthorized: { status: 401, description: 'no valid API key in Authorization: Bearer <key> or X-Auth-Token' },
  rate_limited: { status: 429, description: 'too many requests for this key (or address) in this minute; see Retry-After' },
  too_many_active_runs: {
    status: 429,
    description:
      'this key (or address) has as many runs queued or running as the server allows (BRIG_CLIENT_MAX_ACTIVE_RUNS); see Retry-After',
  },
  queue_full: { status: 503, description: 'the run queue is at capacity; see Retry-After' },
  store_full: {
    status: 503,
    description: "Redis has no room for another run's worst case until results expire (maxmemory); see Retry-After",
  },
  store_unavailable: { status: 503, description: 'Redis does not answer; see Retry-After' },
  workers_unavailable: { status: 503, description: 'no worker is live right now; see Retry-After' },
  language_unknown: { status: 400, description: 'no live worker runs this language; the message lists the available ones' },
  source_missing: { status: 400, description: 'neither source nor files was given' },
  source_conflict: { status: 400, description: 'both source and files were given' },
  source_unsupported: { status: 400, description: 'the default file name of the language is unknown to the API; send files' },
  files_too_many: { status: 400, description: 'more files than the server allows (BRIG_MAX_FILES)' },
  tests_too_many: { status: 400, description: 'more tests than the server allows (BRIG_MAX_TESTS)' },
  content_invalid_base64: { status: 400, description: 'a base64 file content has characters outside the alphabet or bad padding' },
  file_name_invalid: {
    status: 400,
    description:
      'a file name is absolute, has . or .. segments, a name or folder starting with - or @, NUL or control characters, a lone surrogate, or is not in Unicode NFC',
  },
  file_name_duplicate: { status: 400, description: 'two files have the same name' },
  file_name_conflict: { status: 400, description: 'a file name is also used as a directory' },
  limit_invalid: { status: 400, description: 'a limit is not a positive number' },
  limit_over_maximum: { status: 400, description: 'a limit is over the server maximum, which the message names' },
  run_not_found: { status: 404, description: 'no run has this id' },
  run_expired: { status: 404, description: 'the run existed but its result is past the retention time' },
  route_not_found: { status: 404, description: 'no such route' },
  method_not_allowed: { status: 405, description: 'the route exists but not with this method' },
  internal_error: { status: 500, description: 'Brig failed; the request id in X-Request-Id finds it in the logs' },
} as const satisfies Record<string, { status: number; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Every code a run record's error can carry (its verdict is then
 * internal_error): the second half of the one table. `refused` means the job
 * itself could not run (the API checks most of these first, so a job that
 * came through it rarely gets one); `brig` means Brig failed it, and is
 * counted in brig_sandbox_errors_total under its detailed code.
 */
export const RUN_ERROR_CODES = {
  sandbox_failed: {
    kind: 'brig',
    description: "the sandbox could not be built or run; the worker's log (by run id) and the metric label have the detailed code",
  },
  worker_failed: { kind: 'brig', description: 'the worker failed unexpectedly while running the job' },
  run_failed: { kind: 'brig', description: 'the job failed and was given up on (its workers kept dying); recorded by the API' },
  language_unknown: { kind: 'refused', description: 'the worker has no such language' },
  language_unavailable: { kind: 'refused', description: "the worker's image lacks the language's toolchain" },
  limit_invalid: { kind: 'refused', description: 'a limit is not a positive number' },
  limit_over_maximum: { kind: 'refused', description: "a limit is over the worker's maximum" },
  files_empty: { kind: 'refused', description: 'the job has no file' },
  files_too_large: { kind: 'refused', description: 'the files do not fit in the workspace (limits.diskMb)' },
  main_missing: { kind: 'refused', description: 'the entry file is not among the files' },
  file_name_invalid: { kind: 'refused', description: "a file name breaks the rules of the API's file_name_invalid" },
  file_name_duplicate: { kind: 'refused', description: 'two files have the same name' },
  file_name_conflict: { kind: 'refused', description: 'a file name is also used as a directory' },
  compare_invalid: { kind: 'refused', description: 'the compare mode is not one the worker knows' },
  job_invalid: { kind: 'refused', description: "the job broke a rule of the worker's that has no code of its own" },
} as const satisfies Record<string, { kind: 'brig' | 'refused'; description: string }>;

export type RunErrorCode = keyof typeof RUN_ERROR_CODES;
export const RUN_ERROR_CODE_NAMES = Object.keys(RUN_ERROR_CODES) as RunErrorCode[];

export function isRunErrorCode(code: unknown): code is RunErrorCode {
  return typeof code === 'string' && Object.hasOwn(RUN_ERROR_CODES, code);
}

/** What a record says when Brig failed its run, or refused it. */
export interface RunError {
  code: RunErrorCode;
  message: string;
}

export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as ErrorCode[];

/** An error the API answers with as-is: a registered code, a message for the caller, maybe a field and a Retry-After. */
export class ServiceError extends BrigError {
  declare readonly code: ErrorCode;
  readonly retryAfterSeconds?: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; field?: string; retryAfterSeconds?: number }) {
    super(code, message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** The HTTP status of a registered code. */
export function statusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

/** The body every error answer has. field is null when no single value is to blame. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; field: string | null };
}
