/**
 * After a placement's subset has run, seen from outside it (the VM's root
 * cgroup and mount namespace, by scripts/vm/guest/run.sh): against the
 * snapshot taken before (scripts/vm/guest/cgroup-tree.mjs), no cgroup outside
 * the cgroup given to Brig was made, removed or written, and inside it
 * nothing Brig made is left but the `init` leaf its service's processes
 * moved to, and nothing was written but that cgroup's own
 * cgroup.subtree_control (the controllers Brig hands to its parent).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CGROUP_MOUNT, GIVEN_CGROUP, PLACEMENT, underMount } from './vm.ts';

/** One cgroup as scripts/vm/guest/cgroup-tree.mjs records it. */
interface CgroupState {
  /** Path under the mount: '' for the mount's own cgroup, else 'a/b'. */
  path: string;
  /** The files a cgroup's manager sets, those present. */
  files: Record<string, string>;
  /** Brig's mark on the directory. */
  brigMark: boolean;
}

const CGROUP_TREE = new URL('../../scripts/vm/guest/cgroup-tree.mjs', import.meta.url).pathname;

const SNAPSHOT = process.env.BRIG_VM_SNAPSHOT;
const SKIP = SNAPSHOT && PLACEMENT ? false : 'runs in the VM of npm run test:vm, after each placement, with its snapshot';

/** The given cgroup as a path under the mount ('' for the root placement: everything is inside). */
const given = SKIP ? '' : underMount(GIVEN_CGROUP);
const isInside = (path: string) => given === '' || path === given || path.startsWith(`${given}/`);
const leaf = given === '' ? undefined : `${given}/init`;

function load(): { before: Map<string, CgroupState>; after: Map<string, CgroupState> } {
  const byPath = (states: CgroupState[]) => new Map(states.map((state) => [state.path, state]));
  return {
    before: byPath(JSON.parse(readFileSync(SNAPSHOT!, 'utf8')) as CgroupState[]),
    // The same tool as the snapshot before, so that both see the tree alike.
    after: byPath(JSON.parse(execFileSync(process.execPath, [CGROUP_TREE, CGROUP_MOUNT], { encoding: 'utf8' })) as CgroupState[]),
  };
}

const show = (path: string) => (path === '' ? CGROUP_MOUNT : `${CGROUP_MOUNT}/${path}`);

test(`outside the cgroup given to Brig, no cgroup was made, removed or written (${PLACEMENT})`, { skip: SKIP }, () => {
  const { before, after } = load();
  const paths = [...new Set([...before.keys(), ...after.keys()])].filter((path) => !isInside(path)).sort();
  const changed = paths.filter((path) => JSON.stringify(before.get(path)) !== JSON.stringify(after.get(path)));
  const described = changed.map(
    (path) => `${show(path)}: ${JSON.stringify(before.get(path) ?? 'absent')} → ${JSON.stringify(after.get(path) ?? 'absent')}`,
  );
  assert.deepEqual(described, []);
});

test(`inside it, nothing of Brig's is left but its init leaf, and only its own subtree_control was written (${PLACEMENT})`, {
  skip: SKIP,
}, () => {
  const { before, after } = load();
  const made = [...after.keys()].filter((path) => isInside(path) && !before.has(path) && path !== leaf).map(show);
  assert.deepEqual(made, [], 'cgroups made during the run are left');
  const removed = [...before.keys()].filter((path) => isInside(path) && !after.has(path)).map(show);
  assert.deepEqual(removed, [], 'cgroups that were there before are gone');
  const written: string[] = [];
  for (const [path, state] of before) {
    const now = after.get(path);
    if (!isInside(path) || !now) continue;
    for (const file of new Set([...Object.keys(state.files), ...Object.keys(now.files)])) {
      if (given !== '' && path === given && file === 'cgroup.subtree_control') continue; // Brig's to write; the root's is not
      if (state.files[file] !== now.files[file]) written.push(`${show(path)}/${file}: ${state.files[file]} → ${now.files[file]}`);
    }
    if (state.brigMark !== now.brigMark) written.push(`${show(path)}: Brig's mark ${state.brigMark} → ${now.brigMark}`);
  }
  assert.deepEqual(written, []);
});
