import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunRecord } from '../../../../services/shared/contract.ts';
import { storedStatus } from '../../../../services/shared/run-store.ts';

const queued: RunRecord = {
  id: 'mi4x2k7c0abcdefghijklmnop',
  language: 'python',
  status: 'queued',
  verdict: null,
  compile: null,
  createdAt: 1,
};

test("a stored record's status is read from its head, for each status as the writers build the record", () => {
  const running: RunRecord = { ...queued, status: 'running', startedAt: 2 };
  const done: RunRecord = { ...running, status: 'done', verdict: 'ok', finishedAt: 3 };
  const cancelled: RunRecord = { ...queued, status: 'cancelled', finishedAt: 3 };
  for (const record of [queued, running, done, cancelled]) {
    assert.equal(storedStatus(Buffer.from(JSON.stringify(record))), record.status);
  }
});

test('a head not as Brig writes it says nothing: the caller parses the record', () => {
  const cases = {
    spaced: JSON.stringify(queued, null, 1),
    'keys in another order': JSON.stringify({ status: 'done', id: queued.id, language: 'python' }),
    'an unknown status': JSON.stringify({ ...queued, status: 'exploded' }),
    'not JSON': 'done',
    empty: '',
  };
  for (const [name, text] of Object.entries(cases)) assert.equal(storedStatus(Buffer.from(text)), null, name);
});

test('a record with a raw line break anywhere is never passed on unparsed (an event stream would split on it)', () => {
  const head = JSON.stringify({ ...queued, status: 'done' }).slice(0, -1);
  for (const lineBreak of ['\n', '\r']) {
    assert.equal(storedStatus(Buffer.from(`${head},"x":${'1'.repeat(100_000)}${lineBreak}}`)), null, JSON.stringify(lineBreak));
  }
});
