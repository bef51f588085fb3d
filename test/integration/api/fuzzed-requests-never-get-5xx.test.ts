import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { harnessForFile } from './harness.ts';
import { assertWellFormedAnswer, rawRequest } from './raw-http.ts';

/**
 * A bounded fuzzer in the suite (fast-check): valid run requests mutated in
 * every way a hostile client might (wrong types, huge, negative and
 * fractional limits, odd file names, unknown and __proto__ keys, nesting,
 * numbers JSON.stringify cannot write), random bytes in valid JSON, and
 * random request lines and headers over a raw socket. Every answer must be
 * under 500, an error answer must have the error body with a registered code,
 * and no answer may carry a stack or a host path. A 503 the harness could
 * cause (a full queue, a client's run cap) is configured away, not tolerated.
 * On a failure fast-check prints the seed and the shrunk request.
 */
const BODY_LIMIT_BYTES = 256 * 1024;
const MAX_FILES = 8;
const MAX_TESTS = 8;
/** Body fuzz runs: each is one HTTP request, a few ms. */
const BODY_RUNS = 300;
const BYTE_RUNS = 100;
const REQUEST_LINE_RUNS = 150;
const HEARTBEAT_EVERY_MS = 2_000;
/** A raw request with no answer by then is waiting for body bytes that will not come: the client half-closes. */
const SILENCE_BEFORE_END_MS = 300;

let heartbeats: NodeJS.Timeout | undefined;
// Registered before the harness's own hook, so it runs before the harness closes.
after(() => clearInterval(heartbeats));
const h = harnessForFile(
  {
    bodyLimitBytes: BODY_LIMIT_BYTES,
    maxFiles: MAX_FILES,
    maxTests: MAX_TESTS,
    rateLimitPerMinute: 0,
    queueCapacity: 1_000_000,
    clientMaxActiveRuns: 1_000_000,
    waitTimeoutMs: 50,
  },
  async (harness) => {
    await harness.heartbeat();
    // The fuzz outlives a heartbeat's TTL: without this, late runs would be 503 workers_unavailable.
    heartbeats = setInterval(() => void harness.heartbeat().catch(() => {}), HEARTBEAT_EVERY_MS);
  },
);

// ---- Valid requests to start from ----

const text = fc.string({ maxLength: 40 });
const fileName = fc.constantFrom('main.c', 'a.c', 'lib/util.h', 'src/x/y.c', '.hidden', 'caf\u00e9.c', '\u{1F600}.c');
const limits = fc.record(
  {
    cpuMs: fc.integer({ min: 1, max: 10_000 }),
    wallMs: fc.integer({ min: 1, max: 10_000 }),
    memoryMb: fc.integer({ min: 16, max: 512 }),
    processes: fc.integer({ min: 1, max: 16 }),
    outputBytes: fc.integer({ min: 1, max: 65_536 }),
  },
  { requiredKeys: [] },
);
const testCase = fc.record(
  { name: fc.string({ minLength: 1, maxLength: 20 }), stdin: text, expectedOutput: text },
  { requiredKeys: ['expectedOutput'] },
);
const common = {
  stdin: text,
  args: fc.array(text, { maxLength: 4 }),
  limits,
  tests: fc.array(testCase, { maxLength: 3 }),
  compare: fc.oneof(fc.constantFrom('exact', 'trim', 'tokens'), fc.record({ float: fc.double({ min: 0, max: 1, noNaN: true }) })),
  callbackUrl: fc.constantFrom('https://example.com/hook', 'http://10.0.0.1:8080/x'),
};
const validBody = fc.oneof(
  fc.record({ language: fc.constant('python'), source: text, ...common }, { requiredKeys: ['language', 'source'] }),
  fc.record(
    {
      language: fc.constant('c'),
      files: fc.uniqueArray(fc.record({ name: fileName, content: text }), { minLength: 1, maxLength: 3, selector: (f) => f.name }),
      ...common,
    },
    { requiredKeys: ['language', 'files'] },
  ),
);

// ---- Hostile values ----

/**
 * JSON text spliced into the body as it is: number literals JSON.stringify
 * cannot write (it would make 1e400 null), and deep nesting (which fast-check
 * could not print in a counterexample).
 */
class RawJson {
  constructor(readonly text: string) {}
  [fc.toStringMethod](): string {
    return this.text.length > 40 ? `RawJson(${this.text.slice(0, 20)}… ${this.text.length} chars)` : `RawJson(${this.text})`;
  }
}

const nested = (depth: number) => new RawJson('['.repeat(depth) + ']'.repeat(depth));

const oddChar = fc.constantFrom(
  '\ud800',
  '\udc00',
  '\udfff',
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u0085',
  '\u2028',
  '\ufeff',
  '\uffff',
  'e\u0301',
  '\u00e9',
  '\u{1F600}',
  '/',
  '.',
  '..',
  '\\',
  '%',
  '%ff',
  '"',
  '\n',
  ' ',
);
const oddString = fc.oneof(
  fc.string({ unit: fc.oneof(oddChar, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 24 }),
  fc.constantFrom(
    '',
    '..',
    '../x',
    '/etc/passwd',
    'a//b',
    'a/',
    '.',
    './a',
    'a/./b',
    'x'.repeat(300),
    `d/${'y'.repeat(1_100)}`,
    '\ud800',
    '\udc00',
    'cafe\u0301.c',
    'CON',
    'aux.c',
    'NaN',
    'Infinity',
    '-1',
    '1e400',
    '0x10',
    'true',
    'null',
  ),
  fc.integer({ min: 1_000, max: 200_000 }).map((n) => 'z'.repeat(n)),
);
const oddNumber = fc.oneof(
  fc.constantFrom(0, -0, -1, 0.5, -0.5, 1.5, 1e-9, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom('1e400', '-1e400', '1e-400', '123456789012345678901234567890', '-0.0', '1E+2').map((t) => new RawJson(t)),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: oddString },
  { weight: 3, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], [[]], { '': 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2, max: 3_000 }).map(nested) },
  { weight: 1, arbitrary: fc.array(oddString, { maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc.array(
      fc.record({ name: oddString, content: oddString, encoding: fc.constantFrom('utf8', 'base64', 'hex', 5) }, { requiredKeys: [] }),
      { maxLength: MAX_FILES + 2 },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.array(fc.record({ name: oddString, stdin: oddString, expectedOutput: oddString }, { requiredKeys: [] }), {
      maxLength: MAX_TESTS + 2,
    }),
  },
);
const hostileKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'stdIn', 'Language', '', 'float'),
  fc.string({ maxLength: 10 }),
);

interface Mutation {
  /** Picks, level by level, the nth key (mod the count) of the object or array under it. */
  path: number[];
  op: 'set' | 'delete' | 'add';
  key: string;
  value: unknown;
}
const mutation: fc.Arbitrary<Mutation> = fc.record({
  path: fc.array(fc.nat(), { maxLength: 4 }),
  op: fc.constantFrom('set', 'set', 'delete', 'add'),
  key: hostileKey,
  value: hostileValue,
}) as fc.Arbitrary<Mutation>;

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return typeof value === 'object' && value !== null && !(value instanceof RawJson);
}

/** Sets an own, enumerable property, even one named __proto__ (which plain assignment would not create). */
function define(target: Record<string, unknown> | unknown[], key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A fresh copy of a generated value. fast-check hands out the same instance
 * again (constantFrom's [[]], and every value while it replays and shrinks),
 * so a mutation that pushed into it would change later runs, or make it
 * contain itself, which no JSON can say.
 */
function copyValue(value: unknown): unknown {
  if (!isContainer(value)) return value;
  if (Array.isArray(value)) return value.map(copyValue);
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) define(copy, key, copyValue(value[key]));
  return copy;
}

function mutate(body: Record<string, unknown>, m: Mutation): void {
  let node: Record<string, unknown> | unknown[] = body;
  for (const step of m.path) {
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const next: unknown = (node as Record<string, unknown>)[keys[step % keys.length]!];
    if (!isContainer(next)) break;
    node = next;
  }
  const keys = Object.keys(node);
  const existing = keys.length > 0 ? keys[m.path.length === 0 ? 0 : m.path[m.path.length - 1]! % keys.length]! : undefined;
  if (m.op === 'delete' && existing !== undefined) {
    if (Array.isArray(node)) node.splice(Number(existing), 1);
    else delete node[existing];
  } else if (m.op === 'set' && existing !== undefined) {
    define(node, Array.isArray(node) ? Number(existing) : existing, copyValue(m.value));
  } else if (Array.isArray(node)) {
    node.push(copyValue(m.value));
  } else {
    define(node, m.key, copyValue(m.value));
  }
}

function serialize(body: unknown): string {
  const raws: string[] = [];
  const textOut = JSON.stringify(body, (_key, value: unknown) => {
    if (value instanceof RawJson) {
      raws.push(value.text);
      return `__raw_json_${raws.length - 1}__`;
    }
    return value;
  });
  return textOut.replace(/"__raw_json_(\d+)__"/g, (_m, i: string) => raws[Number(i)]!);
}

const query = fc.constantFrom(
  '',
  '',
  '',
  '?wait=true',
  '?wait=1',
  '?wait=0',
  '?wait=maybe',
  '?wait[]=1',
  '?wait=1&wait=0',
  '?__proto__=1',
  '?wait=%ff',
  '?%ff=%zz',
  `?${'q'.repeat(4_000)}=1`,
);

interface SentRequest {
  source?: string;
  files?: { name: string; content: string; encoding?: string }[];
  stdin?: string;
  args?: string[];
  tests?: { stdin?: string; expectedOutput: string }[];
}

const utf8Of = (base64: string) => Buffer.from(base64, 'base64').toString('utf8');
const NAME_NFC = (name: string) => name.isWellFormed() && name.normalize('NFC') === name;

/**
 * An accepted run reaches the worker as it was sent: every text the same
 * after its trip through UTF-8 (a lone surrogate would come back as U+FFFD),
 * every file name well-formed NFC and distinct.
 */
async function assertQueuedAsSent(request: SentRequest, id: string, context: string): Promise<void> {
  const job = await h.queue.getJob(id);
  assert.ok(job, `${context}: accepted but not queued`);
  const data = job.data;
  if (request.files) {
    assert.deepEqual(
      data.files.map((f) => f.name),
      request.files.map((f) => f.name),
      context,
    );
    request.files.forEach((file, i) => {
      const queued = data.files[i]!.contentBase64;
      assert.equal(file.encoding === 'base64' ? queued : utf8Of(queued), file.content, `${context}: files[${i}].content`);
    });
  } else {
    assert.equal(utf8Of(data.files[0]!.contentBase64), request.source, `${context}: source`);
  }
  assert.ok(
    data.files.every((f) => NAME_NFC(f.name)),
    `${context}: a file name that is not well-formed NFC`,
  );
  assert.equal(new Set(data.files.map((f) => f.name)).size, data.files.length, `${context}: two files of one name`);
  assert.equal(utf8Of(data.stdinBase64), request.stdin ?? '', `${context}: stdin`);
  assert.deepEqual(data.args, request.args ?? [], `${context}: args`);
  (request.tests ?? []).forEach((test, i) => {
    assert.equal(utf8Of(data.tests[i]!.stdinBase64), test.stdin ?? '', `${context}: tests[${i}].stdin`);
    assert.equal(utf8Of(data.tests[i]!.expectedOutputBase64), test.expectedOutput, `${context}: tests[${i}].expectedOutput`);
  });
}

async function post(path: string, body: string | Buffer): Promise<{ status: number; text: string }> {
  const res = await fetch(h.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
  return { status: res.status, text: await res.text() };
}

test(`${BODY_RUNS} mutated run requests: none gets a 5xx, every refusal has the error body and a registered code, every accepted run is queued as sent`, async () => {
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(validBody, fc.array(mutation, { maxLength: 3 }), query, async (valid, mutations, q) => {
      const body = structuredClone(valid) as Record<string, unknown>;
      for (const m of mutations) mutate(body, m);
      const sent = serialize(body);
      const { status, text: answer } = await post(`/v1/runs${q}`, sent);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const context = `POST /v1/runs${q.slice(0, 40)} ${sent.slice(0, 300)}`;
      assertWellFormedAnswer(status, answer, context, { method: 'POST', sent });
      if (status === 202 || status === 200)
        await assertQueuedAsSent(JSON.parse(sent) as SentRequest, (JSON.parse(answer) as { id: string }).id, context);
    }),
    { numRuns: BODY_RUNS },
  );
  // The fuzz is only worth something if it reaches both sides of the validator.
  assert.ok((statuses.get(202) ?? 0) + (statuses.get(200) ?? 0) > 0, `no request was accepted: ${JSON.stringify([...statuses])}`);
  assert.ok((statuses.get(400) ?? 0) > 0, `no request was refused: ${JSON.stringify([...statuses])}`);
});

test(`${BYTE_RUNS} valid requests with random bytes overwritten or cut: none gets a 5xx`, async () => {
  await fc.assert(
    fc.asyncProperty(
      validBody,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.option(fc.nat()),
      async (valid, flips, cut) => {
        const bytes = Buffer.from(serialize(valid));
        for (const [at, byte] of flips) bytes[at % bytes.length] = byte;
        const sent = cut === null ? bytes : bytes.subarray(0, cut % bytes.length);
        const { status, text: answer } = await post('/v1/runs', sent);
        assertWellFormedAnswer(status, answer, `POST /v1/runs ${JSON.stringify(sent.toString('latin1').slice(0, 300))}`, {
          method: 'POST',
          sent: sent.toString('latin1'),
        });
      },
    ),
    { numRuns: BYTE_RUNS },
  );
});

// ---- Raw request lines and headers ----

const pathPiece = fc.constantFrom(
  '%',
  '%f',
  '%ff',
  '%zz',
  '%c0%ae',
  '%ed%a0%80',
  '%00',
  '%2e',
  '%2e%2e',
  '%2f',
  '%25',
  '.',
  '..',
  '/',
  '?',
  '#',
  '~',
  '*',
  '[]',
  'a',
  'Z',
  '0',
  '\u00e9',
  ' ',
  '\t',
  '\u0000',
);
const pathTail = fc.array(pathPiece, { maxLength: 8 }).map((p) => p.join(''));
const path = fc.oneof(
  pathTail.map((t) => `/v1/runs/${t}`),
  pathTail.map((t) => `/v1/runs/${t}/events`),
  pathTail.map((t) => `/${t}`),
  fc.constantFrom('/healthz', '/readyz', '/metrics', '/openapi.json', '/v1/languages', '/v1/runs', '*', 'http://x/healthz', ''),
);
const method = fc.constantFrom(
  'GET',
  'GET',
  'POST',
  'POST',
  'DELETE',
  'HEAD',
  'OPTIONS',
  'PUT',
  'PATCH',
  'TRACE',
  'BREW',
  'get',
  'G ET',
  '',
);
const header = fc.constantFrom(
  'Content-Type: application/json',
  'Content-Type: application/json; charset=utf-16',
  'Content-Type: text/plain',
  'Content-Length: 0',
  'Content-Length: 2',
  'Content-Length: 99999999999',
  'Transfer-Encoding: chunked',
  'Content-Encoding: gzip',
  'Content-Encoding: br',
  'Expect: 100-continue',
  'Expect: x',
  'Connection: close',
  'Connection: Upgrade\r\nUpgrade: websocket',
  'X-Request-Id: ../../etc',
  'Authorization: Bearer x',
  'Accept: text/event-stream',
  'Range: bytes=0-',
  'If-None-Match: *',
  `X-Long: ${'l'.repeat(8_000)}`,
);
const rawBody = fc.constantFrom('', '{}', '{"language":"python","source":"1"}', 'hello', '2\r\n{}\r\n0\r\n\r\n', '\u0000\u00ff');

test(`${REQUEST_LINE_RUNS} random request lines and headers over a raw socket: every answer is well formed, none is a 5xx, none hangs`, async () => {
  await fc.assert(
    fc.asyncProperty(method, path, fc.boolean(), fc.uniqueArray(header, { maxLength: 4 }), rawBody, async (m, p, withHost, headers, b) => {
      const request = Buffer.from(
        `${m} ${p} HTTP/1.1\r\n${withHost ? 'Host: brig\r\n' : ''}${headers.map((x) => `${x}\r\n`).join('')}\r\n${b}`,
        'latin1',
      );
      // A length the body does not fill ends at the half-close instead of waiting for the server's request timeout.
      const answer = await rawRequest(h.port, request, {
        endIfSilentMs: SILENCE_BEFORE_END_MS,
        method: m.toUpperCase() === 'HEAD' ? 'HEAD' : m,
        timeoutMs: 5_000,
      });
      assertWellFormedAnswer(answer.status, answer.body, JSON.stringify(request.toString('latin1').slice(0, 300)), {
        method: m.toUpperCase() === 'HEAD' ? 'HEAD' : m,
        sent: request.toString('latin1'),
      });
    }),
    { numRuns: REQUEST_LINE_RUNS },
  );
});

test('after the fuzz, /healthz answers 200 and the metrics count no 5xx', async () => {
  assert.equal((await h.fetch('/healthz')).status, 200);
  const metrics = await (await h.fetch('/metrics')).text();
  assert.doesNotMatch(metrics, /brig_http_requests_total\{[^}]*status="5\d\d"/);
});
