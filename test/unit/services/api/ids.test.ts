import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRunId, missingRunError, newRunId, runIdCreatedAt } from '../../../../services/api/runs/ids.ts';

test('a run id carries its creation time and sorts by it', () => {
  const t = Date.UTC(2030, 0, 1);
  const id = newRunId(t);
  assert.equal(id.length, 25);
  assert.ok(isRunId(id));
  assert.equal(runIdCreatedAt(id), t);
  const later = newRunId(t + 1);
  assert.ok(later > id);
  assert.ok(newRunId(t + 1_000_000_000) > later);
});

test('ids made in the same millisecond differ', () => {
  const t = Date.now();
  const ids = new Set(Array.from({ length: 1000 }, () => newRunId(t)));
  assert.equal(ids.size, 1000);
});

test("an id's random part draws on every base36 digit, none favoured", () => {
  const counts = new Map<string, number>();
  const ids = 20_000;
  for (let i = 0; i < ids; i++) for (const digit of newRunId().slice(9)) counts.set(digit, (counts.get(digit) ?? 0) + 1);
  assert.equal(counts.size, 36);
  // 8,889 each if uniform, with a standard deviation of ~93: ±10% (over 9σ)
  // never fails by chance, and catches a wrong mapping (hex digits, a range skipped).
  const expected = (ids * 16) / 36;
  for (const [digit, n] of counts) assert.ok(Math.abs(n - expected) < expected * 0.1, `digit ${digit}: ${n}`);
});

test('a string that is not a run id has no creation time', () => {
  for (const id of ['', 'abc', 'A'.repeat(25), '0'.repeat(24), '../../etc/passwd0000000000']) {
    assert.equal(isRunId(id), false, id);
    assert.equal(runIdCreatedAt(id), null);
  }
});

test('a missing run is expired when its id is older than the TTL, else not found', () => {
  const now = Date.UTC(2030, 0, 1);
  const ttlSeconds = 60;
  assert.equal(missingRunError(newRunId(now - 61_000), ttlSeconds, now).code, 'run_expired');
  assert.match(missingRunError(newRunId(now - 61_000), ttlSeconds, now).message, /results are kept for 60 seconds/);
  assert.equal(missingRunError(newRunId(now - 59_000), ttlSeconds, now).code, 'run_not_found');
  assert.equal(missingRunError('nonsense', ttlSeconds, now).code, 'run_not_found');
});
