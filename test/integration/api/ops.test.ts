import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { newRunId } from '../../../services/api/runs/ids.ts';
import { HEARTBEAT_TTL_MS, keys, type WorkerHeartbeat } from '../../../services/shared/contract.ts';
import { runRequestSchema } from '../../../services/shared/schemas.ts';
import { publishHeartbeat } from '../../../services/shared/worker-registry.ts';
import { harnessForFile, PYTHON_HELLO } from './harness.ts';
import { validate } from './json-schema.ts';

const h = harnessForFile({ rateLimitPerMinute: 0, maxFiles: 4, maxTests: 3 });

describe('probes', () => {
  test('/healthz answers while the process is up', async () => {
    const res = await h.fetch('/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  test('/readyz is 503 without a live worker and 200 with one', async () => {
    await h.redis.del(keys.worker('test-worker'));
    const down = await h.fetch('/readyz');
    assert.equal(down.status, 503);
    const body = (await down.json()) as { status: string; redis: string; workersLive: number; reasons: string[] };
    assert.equal(body.status, 'not_ready');
    assert.equal(body.redis, 'ok');
    assert.equal(body.workersLive, 0);
    assert.match(body.reasons.join(), /no live worker/);

    await h.heartbeat();
    await new Promise((resolve) => setTimeout(resolve, 250)); // past the short cache of heartbeats
    const up = await h.fetch('/readyz');
    assert.equal(up.status, 200);
    assert.deepEqual(await up.json(), { status: 'ready', redis: 'ok', workersLive: 1, reasons: [] });
  });
});

describe('languages', () => {
  test('the union over fresh heartbeats, with versions and default limits; a stale worker does not count', async () => {
    await h.heartbeat(['python'], 'w1');
    const now = Date.now();
    const second: WorkerHeartbeat = {
      workerId: 'w2',
      hostname: 'h',
      pid: 1,
      slots: 2,
      activeRuns: 0,
      startedAt: now,
      at: now,
      languages: [
        {
          name: 'python',
          displayName: 'Python 3',
          version: '3.12.1',
          sourceFile: 'main.py',
          limits: h.runtimeConfig.defaults,
          compileLimits: null,
          maxLimits: h.runtimeConfig.maxima,
        },
        {
          name: 'c',
          displayName: 'C',
          version: 'gcc 13',
          sourceFile: 'main.c',
          limits: { ...h.runtimeConfig.defaults, cpuMs: 1000 },
          compileLimits: h.runtimeConfig.defaults,
          maxLimits: h.runtimeConfig.maxima,
        },
      ],
    };
    const stale: WorkerHeartbeat = {
      ...second,
      workerId: 'w3',
      at: now - HEARTBEAT_TTL_MS - 1_000,
      languages: [{ ...second.languages[0]!, name: 'java' }],
    };
    await publishHeartbeat(h.redis, second, HEARTBEAT_TTL_MS);
    await publishHeartbeat(h.redis, stale, HEARTBEAT_TTL_MS);
    await h.redis.del(keys.worker('test-worker'));
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // past the heartbeat cache

    const res = await h.fetch('/v1/languages');
    assert.equal(res.status, 200);
    const { languages } = (await res.json()) as {
      languages: { name: string; versions: string[]; workers: number; sourceFile: string; limits: { cpuMs: number } }[];
    };
    assert.deepEqual(
      languages.map((l) => l.name),
      ['c', 'python'],
    );
    const [c, python] = languages;
    assert.deepEqual(python!.versions.sort(), ['1.0.0', '3.12.1']);
    assert.equal(python!.workers, 2);
    assert.equal(python!.sourceFile, 'main.py');
    assert.equal(c!.limits.cpuMs, 1000);

    const java = await h.fetch('/v1/runs', { json: { language: 'java', source: 'class Main {}' } });
    assert.equal(java.status, 400);
    assert.equal(((await java.json()) as { error: { code: string } }).error.code, 'language_unknown');
  });
});

describe('metrics', () => {
  test('/metrics exposes HTTP metrics by route pattern, queue jobs by state and live workers', async () => {
    await h.heartbeat();
    const { id } = (await (await h.fetch('/v1/runs', { json: PYTHON_HELLO })).json()) as { id: string };
    await h.fetch(`/v1/runs/${id}`);
    await h.fetch(`/v1/runs/${newRunId()}`);
    const res = await h.fetch('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain/);
    const text = await res.text();
    assert.match(text, /brig_http_requests_total\{route="\/v1\/runs\/:id",method="GET",status="200"\} 1/);
    assert.match(text, /brig_http_requests_total\{route="\/v1\/runs\/:id",method="GET",status="404"\} 1/);
    assert.match(text, /brig_http_requests_total\{route="\/v1\/runs",method="POST",status="202"\} 1/);
    assert.doesNotMatch(text, new RegExp(id), 'raw URLs never become labels');
    assert.match(text, /brig_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/runs\/:id",method="GET"\}/);
    assert.match(text, /brig_queue_jobs\{state="prioritized"\} 1/, 'runs wait with a priority');
    assert.match(text, /brig_queue_jobs\{state="active"\} 0/);
    assert.match(text, /brig_workers_live [1-9]/);
    await h.queue.obliterate({ force: true });
  });
});

describe('OpenAPI document', () => {
  let doc: {
    openapi: string;
    jsonSchemaDialect: string;
    info: { title: string; version: string };
    paths: Record<string, Record<string, { responses: Record<string, unknown>; operationId: string }>>;
    components: { schemas: Record<string, unknown> };
  };

  before(async () => {
    const res = await h.fetch('/openapi.json');
    assert.equal(res.status, 200);
    doc = (await res.json()) as typeof doc;
  });

  test('is an OpenAPI 3.1 document', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.jsonSchemaDialect, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(doc.info.title, 'Brig');
    assert.ok(doc.info.version);
    const ids = new Set<string>();
    for (const [path, operations] of Object.entries(doc.paths)) {
      assert.ok(path.startsWith('/'), path);
      assert.doesNotMatch(path, /:/, 'path params are {name}, not :name');
      for (const operation of Object.values(operations)) {
        assert.ok(Object.keys(operation.responses).length > 0, `${path} has responses`);
        assert.ok(!ids.has(operation.operationId), 'operation ids are unique');
        ids.add(operation.operationId);
      }
    }
    for (const name of ['RunRequest', 'RunRecord', 'RunEvent', 'Error', 'Languages']) assert.ok(doc.components.schemas[name], name);
    // Every $ref resolves.
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    for (const ref of refs) {
      const name = ref.slice('"$ref":"#/components/schemas/'.length, -1);
      assert.ok(doc.components.schemas[name], `dangling ${ref}`);
    }
  });

  test('every route of the app is in the document, and nothing else', () => {
    const stack = (h.api.app as unknown as { router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router
      .stack;
    const appRoutes = stack
      .filter((layer) => layer.route)
      .flatMap((layer) =>
        Object.keys(layer.route!.methods).map((method) => `${method.toUpperCase()} ${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`),
      );
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    assert.ok(appRoutes.length >= 9, `found ${appRoutes.length} routes`);
    assert.deepEqual(documented.sort(), appRoutes.sort());
  });

  test("the document's RunRequest accepts and rejects the same bodies as the validator", () => {
    const schema = doc.components.schemas.RunRequest as Record<string, unknown>;
    const validator = runRequestSchema(h.config);
    const file = (name: string, content = 'int main(){}', encoding?: string) => ({ name, content, ...(encoding ? { encoding } : {}) });
    const c = (...files: unknown[]) => ({ language: 'c', files });
    const py = (extra: Record<string, unknown> = {}) => ({ language: 'python', source: 'print(1)', ...extra });
    const examples: [string, unknown, boolean][] = [
      ['minimal source', py(), true],
      [
        'files in folders, utf8 and base64',
        c(file('main.c'), file('lib/util.h'), file('data.bin', 'AAEC/w==', 'base64'), file('x.c', 'aGk=', 'base64')),
        true,
      ],
      [
        'every field',
        py({
          stdin: 'in',
          args: ['-v', ''],
          limits: { cpuMs: 1000, wallMs: 2000, memoryMb: 64, processes: 4, outputBytes: 1024 },
          tests: [{ name: 't', stdin: '1', expectedOutput: '1' }, { expectedOutput: '' }],
          compare: { float: 1e-6 },
          callbackUrl: 'https://example.com/hook',
        }),
        true,
      ],
      ['each compare mode', py({ compare: 'tokens' }), true],
      ['empty base64', c(file('empty', '', 'base64')), true],
      ['a dotted name that is not . or ..', c(file('.hidden/..x/a..b')), true],
      ['missing language', { source: 'x' }, false],
      ['language not a name', { language: 'C++ 17', source: 'x' }, false],
      ['neither source nor files', { language: 'python' }, false],
      ['both source and files', { ...c(file('a.c')), source: 'x' }, false],
      ['unknown field', py({ stdIn: 'x' }), false],
      ['empty files', c(), false],
      ['too many files', c(file('a'), file('b'), file('c'), file('d'), file('e')), false],
      ['too many tests', py({ tests: [1, 2, 3, 4].map(() => ({ expectedOutput: '' })) }), false],
      ['name with ..', c(file('../x')), false],
      ['name with a . segment', c(file('a/./b')), false],
      ['name that is .', c(file('.')), false],
      ['absolute name', c(file('/etc/passwd')), false],
      ['name with an empty segment', c(file('a//b')), false],
      ['name ending in /', c(file('a/')), false],
      ['name with a backslash', c(file('a\\b')), false],
      ['name with a control character', c(file('a\u0001b')), false],
      ['name with DEL', c(file('a\u007fb')), false],
      ['empty name', c(file('')), false],
      ['base64 without padding', c(file('x', 'aGk', 'base64')), false],
      ['base64 with padding bits set', c(file('x', 'aGl=', 'base64')), false],
      ['base64 with a space', c(file('x', 'aG k', 'base64')), false],
      ['base64 alphabet in utf8 is fine, * is not base64', c(file('x', 'aGk*', 'base64')), false],
      ['unknown encoding', c(file('x', 'aa', 'hex')), false],
      ['zero limit', py({ limits: { cpuMs: 0 } }), false],
      ['fractional limit', py({ limits: { memoryMb: 1.5 } }), false],
      ['limit as a string', py({ limits: { wallMs: '100' } }), false],
      ['limit the caller may not set', py({ limits: { stackMb: 8 } }), false],
      ['unknown compare', py({ compare: 'fuzzy' }), false],
      ['negative tolerance', py({ compare: { float: -0.1 } }), false],
      ['test without expectedOutput', py({ tests: [{ stdin: '' }] }), false],
      ['test with an empty name', py({ tests: [{ name: '', expectedOutput: '' }] }), false],
      ['argument with NUL', py({ args: ['a\u0000'] }), false],
      ['argument not a string', py({ args: [1] }), false],
      ['callback that is not http', py({ callbackUrl: 'ftp://example.com/' }), false],
      ['stdin not a string', py({ stdin: 5 }), false],
      ['a name outside the BMP (a surrogate pair)', c(file('\u{1F600}.c')), true],
      ['a name with a lone surrogate', c(file('a\ud800.c')), false],
      ['a name that is a lone low surrogate', c(file('\udc00')), false],
    ];
    for (const [name, body, valid] of examples) {
      assert.equal(validator.safeParse(body).success, valid, `validator on ${name}`);
      assert.equal(validate(schema, body, doc as unknown as Record<string, unknown>), valid, `document on ${name}`);
    }
  });
});
