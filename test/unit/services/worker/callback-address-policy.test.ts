/**
 * The callback address filter: only global unicast addresses, whatever the
 * notation, unless the operator's allow-list admits a private receiver.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadServiceConfig } from '../../../../services/shared/config.ts';
import { AddressPolicy } from '../../../../services/worker/callbacks/address-policy.ts';
import { CallbackRefused, type Resolver, resolveTarget } from '../../../../services/worker/callbacks/target.ts';

const strict = new AddressPolicy();
const refusedBy = (policy: AddressPolicy, address: string, hostname = address) => policy.check(address, hostname)?.reason ?? null;

test('every IPv4 range that is not global unicast is refused, by name', () => {
  const rows: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['169.254.0.1', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.255', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['192.0.2.1', 'reserved'],
    ['198.51.100.1', 'reserved'],
    ['203.0.113.1', 'reserved'], // documentation
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'], // benchmarking
    ['192.0.0.8', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['192.88.99.1', 'reserved'],
  ];
  for (const [address, reason] of rows) assert.equal(refusedBy(strict, address), reason, address);
});

test('every IPv6 form that is not global unicast is refused, including the IPv4 ones in disguise', () => {
  const rows: [string, RegExp][] = [
    ['::1', /^loopback$/],
    ['::', /^unspecified$/],
    ['fe80::1', /^linkLocal$/],
    ['fe80::1%eth0', /^linkLocal$/],
    ['fc00::1', /^uniqueLocal$/],
    ['fd12:3456::1', /^uniqueLocal$/],
    ['ff02::1', /^multicast$/],
    ['fec0::1', /deprecatedSiteLocal/],
    ['2001:db8::1', /^reserved$/],
    ['3fff::1', /^reserved$/],
    ['2001:2::1', /^benchmarking$/],
    ['100::1', /^discard$/],
    // IPv4-mapped: judged as the IPv4 address they reach.
    ['::ffff:127.0.0.1', /^loopback$/],
    ['::ffff:7f00:1', /^loopback$/],
    ['::ffff:a9fe:a9fe', /^linkLocal$/],
    ['::ffff:10.1.2.3', /^private$/],
    // IPv4-compatible (deprecated), SIIT: outside 2000::/3.
    // (ipaddr.js alone would read '::127.0.0.1' and '::8.8.8.8' as IPv4-mapped; getaddrinfo prints them so.)
    ['::7f00:1', /2000::\/3/],
    ['::127.0.0.1', /2000::\/3/],
    ['::8.8.8.8', /2000::\/3/],
    ['::ffff:0:7f00:1', /rfc6145/],
    // 6to4 and NAT64 of refused IPv4 addresses; Teredo always.
    ['2002:7f00:1::1', /^6to4 of 127\.0\.0\.1 \(loopback\)$/],
    ['2002:a9fe:a9fe::', /6to4 of 169\.254\.169\.254/],
    ['64:ff9b::7f00:1', /^nat64 of 127\.0\.0\.1 \(loopback\)$/],
    ['64:ff9b::10.0.0.1', /nat64 of 10\.0\.0\.1 \(private\)/],
    ['64:ff9b:1::1', /rfc6052/],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /^teredo$/],
  ];
  for (const [address, reason] of rows) assert.match(refusedBy(strict, address) ?? 'admitted', reason, address);
});

test('global unicast addresses pass, also as IPv4-mapped, 6to4 or NAT64 of a public IPv4 address', () => {
  for (const address of [
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '100.63.255.255',
    '100.128.0.0',
    '172.32.0.1',
    '2606:4700:4700::1111',
    '2a00:1450:4001::1',
    '::ffff:8.8.8.8',
    '2002:808:808::1',
    '64:ff9b::8.8.8.8',
  ]) {
    assert.equal(refusedBy(strict, address), null, address);
  }
});

test('the allow-list admits the CIDRs, addresses and host names it lists, and nothing else', () => {
  const { callbackAllow } = loadServiceConfig({ BRIG_CALLBACK_ALLOW: '10.1.0.0/16, 127.0.0.1, fd00::/8, Hooks.Internal.' });
  const policy = new AddressPolicy(callbackAllow);
  assert.equal(refusedBy(policy, '10.1.2.3'), null);
  assert.equal(refusedBy(policy, '10.2.0.1'), 'private');
  assert.equal(refusedBy(policy, '127.0.0.1'), null);
  assert.equal(refusedBy(policy, '::ffff:127.0.0.1'), null, 'an IPv4-mapped address matches the IPv4 entry');
  assert.equal(refusedBy(policy, '127.0.0.2'), 'loopback');
  assert.equal(refusedBy(policy, '::1'), 'loopback');
  assert.equal(refusedBy(policy, 'fd00::5'), null);
  assert.equal(refusedBy(policy, '192.168.1.1', 'hooks.internal'), null, 'a listed name admits what it resolves to');
  assert.equal(refusedBy(policy, '192.168.1.1', 'HOOKS.internal.'), null, 'names compare without case or the root dot');
  assert.equal(refusedBy(policy, '192.168.1.1', 'other.internal'), 'private');
  // Never a receiver, even by a listed name: 0.0.0.0 reaches this machine.
  assert.equal(refusedBy(policy, '0.0.0.0', 'hooks.internal'), 'unspecified');
  assert.equal(refusedBy(policy, '224.0.0.1', 'hooks.internal'), 'multicast');
  // An IPv4-mapped CIDR covers the IPv4 addresses it maps.
  const mapped = new AddressPolicy(loadServiceConfig({ BRIG_CALLBACK_ALLOW: '::ffff:10.0.0.0/104' }).callbackAllow);
  assert.equal(refusedBy(mapped, '10.1.2.3'), null);
  assert.equal(refusedBy(mapped, '11.0.0.1'), null, 'public anyway');
  assert.equal(refusedBy(mapped, '192.168.0.1'), 'private');
});

test('BRIG_CALLBACK_ALLOW refuses entries in odd notations, and defaults to empty', () => {
  assert.deepEqual(loadServiceConfig({}).callbackAllow, []);
  for (const entry of ['0x7f.1', '127.1', '2130706433', '0177.0.0.1', '10.0.0.0/33', 'a b', 'http://x']) {
    assert.throws(() => loadServiceConfig({ BRIG_CALLBACK_ALLOW: entry }), /BRIG_CALLBACK_ALLOW/, entry);
  }
});

test('odd IPv4 notations never reach DNS: the URL parser turns them into the address they mean, and it is refused', async () => {
  const asked: string[] = [];
  const resolve: Resolver = async (hostname) => {
    asked.push(hostname);
    return [{ address: '93.184.216.34', family: 4 }];
  };
  for (const url of [
    'http://2130706433/x',
    'http://0x7f000001/x',
    'http://0177.0.0.1/x',
    'http://127.1/x',
    'http://0x7f.1/x',
    'http://[::ffff:127.0.0.1]/x',
    'http://[::1]:8080/x',
    'http://0/x',
    'http://%31%32%37.0.0.1/x',
  ]) {
    await assert.rejects(resolveTarget(url, strict, resolve), CallbackRefused, url);
  }
  assert.deepEqual(asked, []);
});

test('a name is refused when any address it resolves to is refused, and pinned to the first one otherwise', async () => {
  const answers = { 'mixed.example': ['93.184.216.34', '10.0.0.1'], 'public.example': ['93.184.216.34', '2606:4700::1'] } as Record<
    string,
    string[]
  >;
  const resolve: Resolver = async (hostname) => answers[hostname]!.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  await assert.rejects(
    resolveTarget('https://mixed.example/hook', strict, resolve),
    /10\.0\.0\.1, not a global unicast address \(private\)/,
  );
  const target = await resolveTarget('https://public.example/hook', strict, resolve);
  assert.equal(target.address, '93.184.216.34');
  assert.equal(target.hostname, 'public.example');
  await assert.rejects(resolveTarget('ftp://public.example/', strict, resolve), /not http or https/);
});
