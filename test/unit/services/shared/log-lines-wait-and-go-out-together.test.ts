/**
 * Log lines below warn wait up to BRIG_LOG_FLUSH_MS and go out in one
 * write(2), at most PIPE_BUF bytes; warn and above go out at once; an exit,
 * however it happens short of SIGKILL, writes what waits.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, LineBatch, PIPE_BUF } from '../../../../services/shared/logger.ts';

const LOGGER_MODULE = new URL('../../../../services/shared/logger.ts', import.meta.url).href;

function withLogFile(run: (path: string, fd: number) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'brig-log-test-'));
    const path = join(dir, 'log');
    const fd = openSync(path, 'w');
    try {
      await run(path, fd);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const messages = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line).msg);

test(
  'lines below warn wait for the flush interval, then go out in order',
  withLogFile(async (path, fd) => {
    const logger = createLogger({ level: 'info', name: 't', flushMs: 150, fd });
    logger.info('one');
    logger.child({ runId: 'r' }).info('two');
    await sleep(20);
    assert.deepEqual(messages(path), []);
    await sleep(400);
    assert.deepEqual(messages(path), ['one', 'two']);
  }),
);

test(
  'a warning goes out at once, after the lines that waited before it',
  withLogFile(async (path, fd) => {
    const logger = createLogger({ level: 'info', name: 't', flushMs: 10_000, fd });
    logger.info('waits');
    logger.warn('goes');
    assert.deepEqual(messages(path), ['waits', 'goes']);
    logger.info('waits again');
    logger.error('goes too');
    assert.deepEqual(messages(path), ['waits', 'goes', 'waits again', 'goes too']);
  }),
);

test(
  'with a flush interval of 0 every line goes out at once',
  withLogFile(async (path, fd) => {
    const logger = createLogger({ level: 'info', name: 't', flushMs: 0, fd });
    logger.info('now');
    assert.deepEqual(messages(path), ['now']);
  }),
);

test('a batch never exceeds PIPE_BUF bytes, so that it stays one atomic write on a pipe; a longer line goes alone', () => {
  const writes: string[] = [];
  const batch = new LineBatch({ write: (s: string) => void writes.push(s) }, 10_000);
  const line = `${'é'.repeat(150)}\n`; // 301 bytes, 151 characters: the limit is in bytes
  for (let i = 0; i < 40; i++) batch.write(line);
  const long = `${'x'.repeat(PIPE_BUF + 10)}\n`;
  batch.write(long);
  batch.lastLevel = 40;
  batch.write('warn\n');
  assert.equal(writes.join(''), `${line.repeat(40)}${long}warn\n`);
  for (const write of writes) if (write !== long) assert.ok(Buffer.byteLength(write) <= PIPE_BUF, `${Buffer.byteLength(write)} bytes`);
  assert.equal(writes.length, Math.ceil(40 / Math.floor(PIPE_BUF / 301)) + 1 + 1);
});

for (const [how, end] of [
  ['process.exit()', 'process.exit(0)'],
  ['an uncaught exception', "setImmediate(() => { throw new Error('boom') })"],
  ['the event loop running out of work', ''],
] as const) {
  test(`lines still waiting when the process ends by ${how} are written`, () => {
    const script = `import { createLogger } from ${JSON.stringify(LOGGER_MODULE)};
const logger = createLogger({ level: 'info', name: 'child', flushMs: 60_000 });
for (let i = 0; i < 30; i++) logger.info('line ' + i);
${end}`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const lines = child.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, 30, child.stderr);
    assert.deepEqual(
      lines.map((line) => JSON.parse(line).msg),
      Array.from({ length: 30 }, (_, i) => `line ${i}`),
    );
  });
}
