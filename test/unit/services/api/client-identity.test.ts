import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressBlock } from '../../../../services/api/middleware/client-identity.ts';

test('an IPv4 client is its address, also when it arrives IPv4-mapped on a dual-stack socket', () => {
  assert.equal(addressBlock('203.0.113.7'), '203.0.113.7');
  assert.equal(addressBlock('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(addressBlock('::FFFF:203.0.113.7'), '203.0.113.7');
});

test('an IPv6 client is its whole /64, however the address is written', () => {
  const block = '2001:db8:aa:bb::/64';
  for (const address of [
    '2001:db8:aa:bb::1',
    '2001:0db8:00aa:00bb:ffff:ffff:ffff:ffff',
    '2001:DB8:AA:BB:1:2:3:4',
    '2001:db8:aa:bb::1.2.3.4',
    'fe80::1%eth0'.replace('fe80::1', '2001:db8:aa:bb::9'),
  ]) {
    assert.equal(addressBlock(address), block, address);
  }
  assert.notEqual(addressBlock('2001:db8:aa:bc::1'), block, 'the next /64 is another client');
  assert.equal(addressBlock('::1'), '0:0:0:0::/64');
});

test('something that is not an address is one shared "unknown" client, never an error', () => {
  for (const junk of ['', 'garbage', '1.2.3', '::ffff:1.2.3.4x', '2001:db8::g']) assert.equal(addressBlock(junk), 'unknown', junk);
});
