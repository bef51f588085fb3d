import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplyError } from 'ioredis';
import { storeFault } from '../../../../services/shared/store-errors.ts';

test('Redis refusing writes over maxmemory is "full", also inside a discarded MULTI or a script', () => {
  assert.equal(storeFault(new ReplyError("OOM command not allowed when used memory > 'maxmemory'.")), 'full');
  assert.equal(
    storeFault(new ReplyError("OOM command not allowed when used memory > 'maxmemory'. script: 82cd, on @user_script:1.")),
    'full',
  );
  const aborted = Object.assign(new ReplyError('EXECABORT Transaction discarded because of previous errors.'), {
    previousErrors: [new ReplyError("OOM command not allowed when used memory > 'maxmemory'.")],
  });
  assert.equal(storeFault(aborted), 'full');
});

test('a Redis that cannot be reached or cannot serve now is "unavailable"', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
  assert.equal(storeFault(refused), 'unavailable');
  assert.equal(
    storeFault(Object.assign(new Error('Reached the max retries per request limit (which is 2).'), { name: 'MaxRetriesPerRequestError' })),
    'unavailable',
  );
  assert.equal(storeFault(new Error('Connection is closed.')), 'unavailable');
  assert.equal(storeFault(new ReplyError('LOADING Redis is loading the dataset in memory')), 'unavailable');
  assert.equal(storeFault(new ReplyError("READONLY You can't write against a read only replica.")), 'unavailable');
});

test('anything else is not a store fault: a bug stays a bug', () => {
  assert.equal(storeFault(new TypeError('Cannot read properties of undefined')), null);
  assert.equal(storeFault(new ReplyError('ERR wrong number of arguments')), null);
  assert.equal(storeFault('OOM'), null);
});
