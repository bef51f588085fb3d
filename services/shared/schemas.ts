import { z } from 'zod';
import { RequestError } from '../../runtime/errors.ts';
import type { Limits } from '../../runtime/limits.ts';
import { checkFileName } from '../../runtime/workspace/files.ts';
import { isCanonicalBase64 } from './base64.ts';
import type { RunEvent, RunRecord } from './contract.ts';
import { ERROR_CODE_NAMES, type ErrorCode, RUN_ERROR_CODE_NAMES, type RunErrorCode } from './errors.ts';

/**
 * The API's JSON shapes as zod schemas: the request validator uses them, and
 * the OpenAPI document is generated from them (z.toJSONSchema), so the two
 * cannot drift. Checks zod cannot express as JSON Schema keywords are custom
 * issues that carry their error code in params.code, mirrored in the document
 * by a .meta() keyword (pattern, if/then, oneOf, maxItems) where one exists.
 */

/** The limits a request may set; the others (disk, open files, stack, file size) are server policy. */
export const REQUEST_LIMIT_NAMES = ['cpuMs', 'wallMs', 'memoryMb', 'processes', 'outputBytes'] as const satisfies readonly (keyof Limits)[];

const LANGUAGE_NAME = /^[a-z0-9][a-z0-9+._-]*$/;
const MAX_LANGUAGE_NAME_CHARS = 64;
const MAX_ARGS = 64;
const MAX_ARG_CHARS = 4096;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing NUL is this pattern's purpose.
const ARG_WITHOUT_NUL = /^[^\u0000]*$/;
const MAX_TEST_NAME_CHARS = 128;
const MAX_CALLBACK_URL_CHARS = 2048;

/**
 * Canonical base64: whole quads, '=' padding only at the end, and the bits
 * that padding drops must be zero (so each byte string has one encoding).
 * For the document only: the API checks with isCanonicalBase64, the same rule
 * in one linear pass (this regex throws RangeError on a string of a few MiB).
 */
export const BASE64_PATTERN = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$';

/**
 * checkFileName's rules as a JSON Schema pattern, for the document (lengths
 * are checked in bytes by checkFileName). Patterns are ECMA-262 with the u
 * flag, where the surrogate range matches only a lone surrogate. NFC has no
 * pattern: the description says it.
 */
export const FILE_NAME_PATTERN =
  '^(?!/)(?!.*//)(?!.*/$)(?!(?:.*/)?\\.\\.?(?:/|$))(?!(?:.*/)?[-@])[^\\u0000-\\u001f\\u007f\\\\\\ud800-\\udfff]+$';
const MAX_FILE_NAME_BYTES = 1024;

/**
 * Text the worker turns into UTF-8 bytes (source, stdin, arguments, expected
 * output). A lone surrogate has no UTF-8 form and Buffer.from would make it
 * U+FFFD without a word, so it is refused here instead.
 */
const text = () =>
  z.string().refine((value) => value.isWellFormed(), {
    error:
      'is not well-formed Unicode: it has a lone surrogate (\\ud800-\\udfff without its pair), which has no UTF-8 form; send valid Unicode text, or bytes as a base64 file',
  });

/** A custom issue that becomes the API error `code`. */
function issue(ctx: z.RefinementCtx, code: ErrorCode, message: string, path: (string | number)[] = []): void {
  ctx.addIssue({ code: 'custom', message, path, params: { code } });
}

const fileNameSchema = z
  .string()
  .superRefine((name, ctx) => {
    try {
      checkFileName(name, 'name');
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      issue(ctx, 'file_name_invalid', error.message);
    }
  })
  .meta({
    pattern: FILE_NAME_PATTERN,
    maxLength: MAX_FILE_NAME_BYTES,
    description:
      'a relative path inside the working dir, / as the separator, no . or .. segments, no name or folder starting with - or @ (tools would read it as an option), no NUL or control characters; well-formed Unicode in NFC, unique after normalisation',
  });

export const fileSchema = z
  .strictObject({
    name: fileNameSchema,
    content: text(),
    encoding: z.enum(['utf8', 'base64']).default('utf8'),
  })
  .superRefine((file, ctx) => {
    if (file.encoding === 'base64' && !isCanonicalBase64(file.content)) {
      issue(
        ctx,
        'content_invalid_base64',
        'is not valid base64: only A-Z a-z 0-9 + / with = padding at the end, no spaces or line breaks',
        ['content'],
      );
    }
  })
  .meta({
    if: { properties: { encoding: { const: 'base64' } }, required: ['encoding'] },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keywords, not a thenable.
    then: { properties: { content: { pattern: BASE64_PATTERN } } },
  });

const limitValue = z.number().int().positive();
export const requestLimitsSchema = z
  .strictObject({
    cpuMs: limitValue.optional(),
    wallMs: limitValue.optional(),
    memoryMb: limitValue.optional(),
    processes: limitValue.optional(),
    outputBytes: limitValue.optional(),
  } satisfies Record<(typeof REQUEST_LIMIT_NAMES)[number], z.ZodType>)
  .meta({
    description:
      'limits of each run step; unset ones come from the language, then the server default. A value over the server maximum is refused, never clamped.',
  });

export const testCaseSchema = z.strictObject({
  name: text().min(1).max(MAX_TEST_NAME_CHARS).optional(),
  stdin: text().default(''),
  expectedOutput: text(),
});

export const compareSchema = z.union([z.enum(['exact', 'trim', 'tokens']), z.strictObject({ float: z.number().nonnegative() })], {
  error: 'must be "exact", "trim", "tokens" or {"float": tolerance}',
});

/** The body of POST /v1/runs. maxFiles and maxTests come from the service config. */
export function runRequestSchema(opts: { maxFiles: number; maxTests: number }) {
  return z
    .strictObject({
      language: z
        .string()
        .min(1)
        .max(MAX_LANGUAGE_NAME_CHARS)
        .regex(LANGUAGE_NAME, { error: 'must be a language name such as "python"; see GET /v1/languages' }),
      source: text().optional().meta({ description: "shorthand for one file with the language's default file name" }),
      files: z.array(fileSchema).min(1).optional().meta({ maxItems: opts.maxFiles }),
      stdin: text().default(''),
      // A regex, not a refine: the OpenAPI document shows it as the pattern. argv strings end at NUL.
      args: z
        .array(text().max(MAX_ARG_CHARS).regex(ARG_WITHOUT_NUL, { error: 'must not contain NUL' }))
        .max(MAX_ARGS)
        .default([]),
      limits: requestLimitsSchema.default({}),
      tests: z.array(testCaseSchema).default([]).meta({
        maxItems: opts.maxTests,
        description: 'judge mode when not empty: each test runs in a fresh sandbox from the one compiled workspace',
      }),
      compare: compareSchema.default('trim'),
      callbackUrl: z
        .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
        .max(MAX_CALLBACK_URL_CHARS)
        .refine((value) => value.isWellFormed(), { error: 'must be an http or https URL in well-formed Unicode (no lone surrogates)' })
        .optional()
        .meta({
          pattern: '^https?://',
          description:
            'where the final record is POSTed when a worker ends the run: signed with Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature), retried with backoff on 5xx, 408, 429 and network failures, redirects not followed; only global unicast addresses are reached, unless the operator admits a private receiver (BRIG_CALLBACK_ALLOW)',
        }),
    })
    .superRefine((body, ctx) => {
      if (body.source === undefined && body.files === undefined) issue(ctx, 'source_missing', 'send either source or files');
      if (body.source !== undefined && body.files !== undefined)
        issue(ctx, 'source_conflict', 'send either source or files, not both', ['source']);
      if (body.files && body.files.length > opts.maxFiles) {
        issue(ctx, 'files_too_many', `has ${body.files.length} files; the server allows at most ${opts.maxFiles}`, ['files']);
      }
      if (body.tests.length > opts.maxTests) {
        issue(ctx, 'tests_too_many', `has ${body.tests.length} tests; the server allows at most ${opts.maxTests}`, ['tests']);
      }
    })
    .meta({
      oneOf: [{ required: ['source'] }, { required: ['files'] }],
      description:
        'every string must be well-formed Unicode: a lone surrogate (\\ud800-\\udfff without its pair) is refused, as it has no UTF-8 form',
    });
}

export type RunRequest = z.output<ReturnType<typeof runRequestSchema>>;

export const runQuerySchema = z.object({
  wait: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .meta({ description: `wait for the run to finish (up to the server's wait timeout) and answer with its record` }),
});

// ---- Answers (for the document; the API writes them from typed values) ----

const stepVerdicts = ['ok', 'runtime_error', 'time_limit', 'memory_limit', 'output_limit'] as const;
const testVerdictSchema = z.enum([...stepVerdicts, 'wrong_answer']);
const runVerdictSchema = z.enum([...stepVerdicts, 'wrong_answer', 'compile_error', 'internal_error']);

const summaryFields = {
  exitCode: z.number().int().nullable(),
  signal: z.number().int().nullable(),
  cpuMs: z.number(),
  wallMs: z.number(),
  memoryKb: z.number().meta({
    description:
      "peak memory of the step's cgroup above its level at the program's start, in KiB; charged in per-CPU batches of up to 64 pages, so a small program can read 0",
  }),
  maxRssKb: z.number().meta({
    description:
      "the largest resident set of one of the step's processes, in KiB (ru_maxrss, shared library pages included); 0 when unknown",
  }),
  truncated: z.boolean(),
};
const stepFields = {
  stdout: z.string(),
  stderr: z.string(),
  stdoutEncoding: z.literal('base64').optional(),
  stderrEncoding: z.literal('base64').optional(),
  ...summaryFields,
};
export const stepSchema = z.object({ ...stepFields, verdict: z.enum(stepVerdicts) });
export const testViewSchema = z.object({ ...stepFields, name: z.string(), verdict: testVerdictSchema });
export const stepSummarySchema = z
  .object({ ...summaryFields, verdict: z.enum(stepVerdicts) })
  .meta({ description: "a step's figures and verdict, without its output (the final record has the output)" });
export const testSummarySchema = z
  .object({ ...summaryFields, name: z.string(), verdict: testVerdictSchema })
  .meta({ description: "a test's figures and verdict, without its output (the final record has the output)" });
const runProgressSchema = z
  .object({
    workerId: z.string(),
    compile: stepSummarySchema
      .nullable()
      .optional()
      .meta({ description: 'present once the compile step is over; null for a language without one' }),
    tests: z.array(testSummarySchema),
  })
  .meta({ description: 'only while the run is running: the steps so far, without their output' });

export const runRecordSchema = z.object({
  id: z.string(),
  language: z.string(),
  status: z.enum(['queued', 'running', 'done', 'cancelled']),
  verdict: runVerdictSchema.nullable(),
  compile: stepSchema.nullable(),
  run: stepSchema.nullable().optional(),
  tests: z.array(testViewSchema).optional(),
  createdAt: z.number().int(),
  startedAt: z.number().int().optional(),
  finishedAt: z.number().int().optional(),
  error: z
    .object({ code: z.enum(RUN_ERROR_CODE_NAMES as [RunErrorCode, ...RunErrorCode[]]), message: z.string() })
    .optional()
    .meta({ description: 'when the verdict is internal_error: why (the codes are listed in the API description)' }),
  progress: runProgressSchema.optional(),
});

export const runEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('queued'), id: z.string() }),
  z.object({ type: z.literal('started'), id: z.string(), workerId: z.string() }),
  z.object({ type: z.literal('compiled'), id: z.string(), compile: stepSummarySchema.nullable() }),
  z.object({ type: z.literal('test'), id: z.string(), index: z.number().int().nonnegative(), test: testSummarySchema }),
  z.object({ type: z.literal('done'), id: z.string(), record: runRecordSchema }),
  z.object({ type: z.literal('cancelled'), id: z.string() }),
]);

// The document's shapes must be the contract's: these fail to compile if either side changes alone.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const recordMatchesContract: Same<z.output<typeof runRecordSchema>, RunRecord> = true;
const eventMatchesContract: Same<z.output<typeof runEventSchema>, RunEvent> = true;
void recordMatchesContract;
void eventMatchesContract;

export const runAcceptedSchema = z.object({ id: z.string(), status: z.enum(['queued', 'running', 'done', 'cancelled']) });

export const errorBodySchema = z.object({
  error: z.object({ code: z.enum(ERROR_CODE_NAMES as [ErrorCode, ...ErrorCode[]]), message: z.string(), field: z.string().nullable() }),
});

const limitsSchema = z.object({
  cpuMs: z.number(),
  wallMs: z.number(),
  memoryMb: z.number(),
  processes: z.number(),
  outputBytes: z.number(),
  fileSizeMb: z.number(),
  openFiles: z.number(),
  stackMb: z.number(),
  diskMb: z.number(),
} satisfies Record<keyof Limits, z.ZodType>);

export const languageSchema = z.object({
  name: z.string(),
  displayName: z.string(),
  /** Workers may run different toolchain versions during a rollout. */
  versions: z.array(z.string()),
  sourceFile: z.string().nullable().meta({ description: 'the file name a lone source goes into; null when only files can be sent' }),
  limits: limitsSchema.meta({ description: 'what a run step gets when the request asks for nothing' }),
  compileLimits: limitsSchema
    .nullable()
    .meta({ description: "the compile step's limits (server policy); null for a language without one" }),
  maxLimits: limitsSchema.meta({ description: 'the most a request may ask for; more is refused with limit_over_maximum' }),
  workers: z.number().int().meta({ description: 'live workers that run this language' }),
});
export const languagesSchema = z.object({ languages: z.array(languageSchema) });

export const healthSchema = z.object({ status: z.literal('ok') });
export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  redis: z
    .enum(['ok', 'full', 'unreachable'])
    .meta({ description: "full: Redis has no room for another run's worst case (maxmemory), so new runs are refused with store_full" }),
  workersLive: z.number().int(),
  reasons: z.array(z.string()),
});

export type LanguageView = z.output<typeof languageSchema>;
export type Readiness = z.output<typeof readinessSchema>;
