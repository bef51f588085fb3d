import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadRuntimeConfig } from '../../../../services/shared/config.ts';

test('defaults apply when the environment is empty', () => {
  const config = loadRuntimeConfig({});
  assert.equal(config.stateDir, '/var/lib/brig');
  assert.equal(config.cgroupParent, 'brig');
  assert.equal(config.defaults.cpuMs, 2000);
  assert.ok(config.slots >= 1);
});

test('settings and limits come from the environment', () => {
  const config = loadRuntimeConfig({ BRIG_SLOTS: '7', BRIG_DEFAULT_CPU_MS: '1500', BRIG_MAX_MEMORY_MB: '4096', BRIG_CGROUP_VERSION: '2' });
  assert.equal(config.slots, 7);
  assert.equal(config.defaults.cpuMs, 1500);
  assert.equal(config.maxima.memoryMb, 4096);
  assert.equal(config.cgroupVersion, '2');
});

test('an invalid setting names the variable', () => {
  assert.throws(() => loadRuntimeConfig({ BRIG_SLOTS: 'many' }), (e: unknown) => (e as Error).message.includes('BRIG_SLOTS'));
  assert.throws(() => loadRuntimeConfig({ BRIG_CGROUP_PARENT: '../escape' }), (e: unknown) => (e as Error).message.includes('BRIG_CGROUP_PARENT'));
  assert.throws(() => loadRuntimeConfig({ BRIG_DEFAULT_CPU_MS: '99999' }), (e: unknown) => (e as Error).message.includes('BRIG_MAX_CPU_MS'));
});
