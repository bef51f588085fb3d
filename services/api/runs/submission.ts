import type { Limits } from '../../../runtime/limits.ts';
import { checkFiles } from '../../../runtime/workspace/files.ts';
import type { RunJobData } from '../../shared/contract.ts';
import { ServiceError } from '../../shared/errors.ts';
import type { LanguageView, RunRequest } from '../../shared/schemas.ts';

/**
 * The checks a request passes after its schema, which need the live
 * languages, and its translation into the job the worker gets. Everything
 * here throws before anything is written or queued.
 */

/** Seconds a caller should wait before retrying when no worker is live: a couple of heartbeats. */
export const WORKERS_UNAVAILABLE_RETRY_AFTER_S = 5;

export function findLanguage(languages: ReadonlyMap<string, LanguageView>, name: string): LanguageView {
  const language = languages.get(name);
  if (language) return language;
  if (languages.size === 0) {
    throw new ServiceError('workers_unavailable', 'no worker is live right now, so no language can run; retry shortly', {
      retryAfterSeconds: WORKERS_UNAVAILABLE_RETRY_AFTER_S,
    });
  }
  throw new ServiceError(
    'language_unknown',
    `language ${JSON.stringify(name)} is not available; available: ${[...languages.keys()].join(', ')}`,
    { field: 'language' },
  );
}

export interface JobContext {
  id: string;
  /** Who submits it: see middleware/client-identity.ts. */
  client: string;
  createdAt: number;
  requestId?: string;
}

export function toJobData(request: RunRequest, language: LanguageView, ctx: JobContext): RunJobData {
  const files = submissionFiles(request, language);
  checkFiles(files.map((f) => ({ name: f.name, content: Buffer.alloc(0) })));
  // What the caller asked for travels as asked: the worker resolves it over the language's limits.
  const limits = Object.fromEntries(Object.entries(request.limits).filter(([, v]) => v !== undefined)) as Partial<Limits>;
  return {
    id: ctx.id,
    language: language.name,
    files: files.map((f) => ({ name: f.name, contentBase64: f.contentBase64 })),
    stdinBase64: toBase64(request.stdin),
    args: request.args,
    limits,
    tests: request.tests.map((test, index) => ({
      name: test.name ?? `test ${index + 1}`,
      stdinBase64: toBase64(test.stdin),
      expectedOutputBase64: toBase64(test.expectedOutput),
    })),
    compare: request.compare,
    client: ctx.client,
    ...(request.callbackUrl === undefined ? {} : { callbackUrl: request.callbackUrl }),
    ...(ctx.requestId === undefined ? {} : { requestId: ctx.requestId }),
    createdAt: ctx.createdAt,
  };
}

function submissionFiles(request: RunRequest, language: LanguageView): { name: string; contentBase64: string }[] {
  if (request.files) {
    // The schema has already checked that base64 content is canonical base64.
    return request.files.map((f) => ({ name: f.name, contentBase64: f.encoding === 'base64' ? f.content : toBase64(f.content) }));
  }
  if (language.sourceFile === null) {
    throw new ServiceError(
      'source_unsupported',
      `the API does not know the default file name of ${language.name}; send files with names instead of source`,
      { field: 'source' },
    );
  }
  return [{ name: language.sourceFile, contentBase64: toBase64(request.source ?? '') }];
}

function toBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** Bytes the job's data takes in Redis, near enough: its inputs dominate, and they are all strings. */
export function jobDataBytes(job: RunJobData): number {
  const texts = [
    ...job.files.flatMap((f) => [f.name, f.contentBase64]),
    job.stdinBase64,
    ...job.args,
    ...job.tests.flatMap((t) => [t.name, t.stdinBase64, t.expectedOutputBase64]),
    job.callbackUrl ?? '',
  ];
  return texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
}
