import assert from 'node:assert/strict';
import { test } from 'node:test';
import { favorDynmodsCheck } from '../../../../runtime/cgroups/v1/describe.ts';

const HIERARCHIES = ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids'];
const line = (id: number, mountPoint: string, superOptions: string) =>
  `${id} 31 0:${id} / ${mountPoint} rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup ${superOptions}`;

test('doctor names every hierarchy mounted without favordynmods and says how to mount it', () => {
  const mountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    line(35, '/sys/fs/cgroup/memory', 'rw,memory'),
    line(39, '/sys/fs/cgroup/pids', 'rw,favordynmods,pids'),
  ].join('\n');
  const check = favorDynmodsCheck(HIERARCHIES, mountinfo);
  assert.equal(check.ok, true, 'advice, not a failure: warm slots take the wait off the request path');
  assert.match(check.detail, /^\/sys\/fs\/cgroup\/memory mounted without favordynmods/);
  assert.doesNotMatch(check.detail, /\/sys\/fs\/cgroup\/pids mounted without/);
  assert.match(check.detail, /mount -o remount,favordynmods/);
});

test('doctor says joining a cgroup does not wait when every hierarchy has favordynmods', () => {
  const mountinfo = [
    line(35, '/sys/fs/cgroup/memory', 'rw,favordynmods,memory'),
    line(39, '/sys/fs/cgroup/pids', 'rw,favordynmods,pids'),
  ].join('\n');
  assert.match(favorDynmodsCheck(HIERARCHIES, mountinfo).detail, /mounted with favordynmods: joining a cgroup does not wait/);
});

test('an option named only in the per-mount options, or a lookalike, does not count', () => {
  const mountinfo = [
    '35 31 0:35 / /sys/fs/cgroup/memory rw,favordynmods - cgroup cgroup rw,memory',
    line(39, '/sys/fs/cgroup/pids', 'rw,nofavordynmods,pids'),
  ].join('\n');
  assert.match(favorDynmodsCheck(HIERARCHIES, mountinfo).detail, /^\/sys\/fs\/cgroup\/memory, \/sys\/fs\/cgroup\/pids mounted without/);
});
