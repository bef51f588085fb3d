/**
 * A slot's workspace mount points are reused only once nothing is mounted on
 * them: real tmpfs mounts on a runs folder of the test's own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MNT_DETACH, mount, unmount } from '../../../../runtime/system/libc.ts';
import { MountPoints } from '../../../../runtime/workspace/mount-points.ts';

const runsDir = mkdtempSync(join(tmpdir(), 'brig-mount-points-'));
after(() => rmSync(runsDir, { recursive: true, force: true }));

test('an unmounted mount point given back is the next one taken; no new directory is made', () => {
  const points = new MountPoints(runsDir);
  const first = points.take();
  mount('tmpfs', first, 'tmpfs', 0, 'size=64k');
  unmount(first, MNT_DETACH);
  points.give(first);
  assert.equal(points.take(), first);
  assert.deepEqual(readdirSync(runsDir), [first.slice(runsDir.length + 1)]);
});

test('a directory still mounted is not taken back: the next job gets a new one', () => {
  const points = new MountPoints(runsDir);
  const stacked = points.take();
  // Two mounts on it: the workspace's unmount takes only the top one.
  mount('tmpfs', stacked, 'tmpfs', 0, 'size=64k');
  mount('tmpfs', stacked, 'tmpfs', 0, 'size=64k');
  try {
    unmount(stacked, MNT_DETACH);
    points.give(stacked);
    assert.notEqual(points.take(), stacked);
  } finally {
    unmount(stacked, MNT_DETACH);
  }
});
