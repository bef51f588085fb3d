/**
 * The callback signature, checked the way the README tells a receiver to
 * (Standard Webhooks), with an HMAC written here rather than Brig's own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { callbackSecretKey, loadServiceConfig } from '../../../../services/shared/config.ts';
import { statusOutcome } from '../../../../services/worker/callbacks/attempt.ts';
import { callbackHeaders } from '../../../../services/worker/callbacks/signature.ts';
import { CALLBACK_TOLERANCE_S as TOLERANCE_S, verifyCallback as verify } from '../../../helpers/webhook.ts';

const SECRET = `whsec_${Buffer.alloc(32, 0x5a).toString('base64')}`;

test('a signed callback verifies; a changed body, id or old timestamp does not', () => {
  const key = callbackSecretKey(SECRET)!;
  const body = JSON.stringify({ id: 'r1', status: 'done', run: { stdout: 'é\n' } });
  const nowMs = 1_700_000_000_123;
  const headers = callbackHeaders('r1', body, key, nowMs);
  assert.equal(headers['webhook-id'], 'r1');
  assert.equal(headers['webhook-timestamp'], '1700000000');
  assert.match(headers['webhook-signature']!, /^v1,[A-Za-z0-9+/]{43}=$/);
  assert.equal(verify(SECRET, headers, body, 1_700_000_010), true);
  assert.equal(verify(SECRET, headers, body.replace('done', 'dune'), 1_700_000_010), false);
  assert.equal(verify(SECRET, { ...headers, 'webhook-id': 'r2' }, body, 1_700_000_010), false);
  assert.equal(verify(SECRET, headers, body, 1_700_000_000 + TOLERANCE_S + 1), false, 'too old: a replay');
  assert.equal(verify(`whsec_${Buffer.alloc(32, 1).toString('base64')}`, headers, body, 1_700_000_010), false);
});

test('without a secret the callback carries its id and timestamp, and no signature', () => {
  const headers = callbackHeaders('r1', '{}', null, 5_000);
  assert.deepEqual(headers, { 'webhook-id': 'r1', 'webhook-timestamp': '5' });
});

test('BRIG_CALLBACK_SECRET must be 24 to 64 bytes of base64, whsec_ optional', () => {
  assert.equal(callbackSecretKey(SECRET)?.length, 32);
  assert.equal(callbackSecretKey(Buffer.alloc(24, 1).toString('base64'))?.length, 24);
  assert.equal(callbackSecretKey(`whsec_${Buffer.alloc(23, 1).toString('base64')}`), null);
  assert.equal(callbackSecretKey(`whsec_${Buffer.alloc(65, 1).toString('base64')}`), null);
  assert.equal(callbackSecretKey('whsec_not base64!'), null);
  assert.throws(() => loadServiceConfig({ BRIG_CALLBACK_SECRET: 'hunter2' }), /BRIG_CALLBACK_SECRET: must be whsec_/);
  assert.equal(loadServiceConfig({}).callbackSecret, undefined);
});

test('2xx is delivered; 408, 429 and 5xx are tried again; redirects and other 4xx are dropped', () => {
  for (const status of [200, 201, 204, 299]) assert.equal(statusOutcome(status), 'delivered', String(status));
  for (const status of [408, 429, 500, 502, 503, 504, 599]) assert.equal(statusOutcome(status), 'failed', String(status));
  for (const status of [100, 301, 302, 307, 308, 400, 401, 403, 404, 410, 413, 422])
    assert.equal(statusOutcome(status), 'dropped', String(status));
});
