/**
 * The one table of test uid ranges (test/helpers/uid-bases.ts): no two
 * files share a host uid, none reaches into a real service's default range,
 * every entry names a test file, and no test file picks a base by hand.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IDS_PER_SLOT } from '../../../runtime/slots/lease.ts';
import { loadRuntimeConfig } from '../../../services/shared/config.ts';
import { FIRST_TEST_UID, UID_RANGES, uidBase } from '../../helpers/uid-bases.ts';

const TEST_DIR = fileURLToPath(new URL('../..', import.meta.url));
const TABLE = join(TEST_DIR, 'helpers', 'uid-bases.ts');
/** A uidBase, UID_BASE or BRIG_UID_BASE set to a number written in the file (quoted or not). */
const BASE_BY_HAND = /(?:uidBase|UID_BASE)['"]?\s*[:=]\s*['"]?\d/;

function typeScriptFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return typeScriptFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

test('no two test files share a host uid', () => {
  const sorted = [...UID_RANGES].sort((a, b) => a.base - b.base);
  for (const [index, range] of sorted.entries()) {
    assert.ok(range.end > range.base, `${range.owner} has no uids`);
    const next = sorted[index + 1];
    if (next)
      assert.ok(range.end <= next.base, `${range.owner} (${range.base}–${range.end - 1}) overlaps ${next.owner} (from ${next.base})`);
  }
});

test("test uids start above a real service's default range", () => {
  const defaults = loadRuntimeConfig({});
  const serviceEnd = defaults.uidBase + defaults.maxSlots * IDS_PER_SLOT;
  assert.ok(FIRST_TEST_UID >= serviceEnd, `test uids from ${FIRST_TEST_UID} reach into the default service range (to ${serviceEnd - 1})`);
  assert.ok(UID_RANGES.every((range) => range.base >= FIRST_TEST_UID));
});

test('every entry names a test file under test/integration', () => {
  const missing = UID_RANGES.map((range) => `integration/${range.owner}.test.ts`).filter((path) => !existsSync(join(TEST_DIR, path)));
  assert.deepEqual(missing, []);
});

test('a file that leases more slots than its entry gives it is refused', () => {
  const [first] = UID_RANGES;
  assert.equal(uidBase(first!.owner, first!.slots), first!.base);
  assert.throws(() => uidBase(first!.owner, first!.slots + 1), /raise its count there/);
});

test('no test file picks a uid base by hand: each takes it from the table', () => {
  const byHand = typeScriptFiles(TEST_DIR)
    .filter((file) => file !== TABLE)
    .flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, index) => (BASE_BY_HAND.test(line) ? [`${relative(TEST_DIR, file)}:${index + 1}: ${line.trim()}`] : [])),
    );
  assert.deepEqual(byHand, []);
});
