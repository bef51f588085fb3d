import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadRuntimeConfig, loadServiceConfig } from '../../../../services/shared/config.ts';

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
  assert.throws(
    () => loadRuntimeConfig({ BRIG_SLOTS: 'many' }),
    (e: unknown) => (e as Error).message.includes('BRIG_SLOTS'),
  );
  assert.throws(
    () => loadRuntimeConfig({ BRIG_CGROUP_PARENT: '../escape' }),
    (e: unknown) => (e as Error).message.includes('BRIG_CGROUP_PARENT'),
  );
  assert.throws(
    () => loadRuntimeConfig({ BRIG_DEFAULT_CPU_MS: '99999' }),
    (e: unknown) => (e as Error).message.includes('BRIG_MAX_CPU_MS'),
  );
});

test('Redis URLs: redis://, rediss:// and unix:// sockets become connection options', async () => {
  const { bullmqConnection, redisConnectionOptions } = await import('../../../../services/shared/redis.ts');
  assert.deepEqual(redisConnectionOptions('unix:///var/lib/brig/redis/redis.sock'), { path: '/var/lib/brig/redis/redis.sock' });
  assert.deepEqual(
    redisConnectionOptions('unix:///r/redis.sock?password=p%40ss'),
    { path: '/r/redis.sock', password: 'p@ss' },
    "a socket's password comes as ?password=",
  );
  assert.deepEqual(bullmqConnection('unix:///r/redis.sock?password=x'), { path: '/r/redis.sock', password: 'x' });
  assert.deepEqual(bullmqConnection('unix:///tmp/r.sock'), { path: '/tmp/r.sock' });
  const tcp = redisConnectionOptions('rediss://user:p%40ss@redis.example:6380/2');
  assert.equal(tcp.host, 'redis.example');
  assert.equal(tcp.port, 6380);
  assert.equal(tcp.username, 'user');
  assert.equal(tcp.password, 'p@ss');
  assert.equal(tcp.db, 2);
  assert.deepEqual(tcp.tls, {});
  assert.equal(redisConnectionOptions('redis://127.0.0.1').port, 6379);
  assert.deepEqual(bullmqConnection('redis://127.0.0.1:7000'), { url: 'redis://127.0.0.1:7000' });
});

test('the service listens on loopback unless told, and the run budget, client cap and Redis cap have documented defaults', () => {
  const config = loadServiceConfig({});
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.allowAnonymous, false);
  assert.equal(config.trustProxy, false);
  assert.equal(config.maxRunOutputBytes, 16 * 1024 * 1024);
  assert.equal(config.maxRunWallMs, 300_000);
  assert.equal(config.clientMaxActiveRuns, 200);
  assert.equal(config.redisMaxMemory, '1gb');
});

test('BRIG_TRUST_PROXY: off, a hop count, or a list of proxies; BRIG_ALLOW_ANONYMOUS is a flag', () => {
  assert.equal(loadServiceConfig({ BRIG_TRUST_PROXY: 'false' }).trustProxy, false);
  assert.equal(loadServiceConfig({ BRIG_TRUST_PROXY: '1' }).trustProxy, 1);
  assert.deepEqual(loadServiceConfig({ BRIG_TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy, ['loopback', '10.0.0.0/8']);
  assert.equal(loadServiceConfig({ BRIG_ALLOW_ANONYMOUS: '1' }).allowAnonymous, true);
  assert.throws(
    () => loadServiceConfig({ BRIG_ALLOW_ANONYMOUS: 'sure' }),
    (e: unknown) => (e as Error).message.includes('BRIG_ALLOW_ANONYMOUS'),
  );
  assert.throws(
    () => loadServiceConfig({ BRIG_REDIS_MAXMEMORY: 'lots' }),
    (e: unknown) => (e as Error).message.includes('BRIG_REDIS_MAXMEMORY'),
  );
});
