import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CancelledError, HostError, LanguageUnavailableError, RequestError, SandboxError } from '../../../../runtime/errors.ts';
import { isRunErrorCode, RUN_ERROR_CODES } from '../../../../services/shared/errors.ts';
import { ActiveRuns, abortKind } from '../../../../services/worker/active-runs.ts';
import { describeFailure, queueWillRetry } from '../../../../services/worker/failures.ts';

test("a sandbox that could not be built is Brig's failure: sandbox_failed for the caller, the detailed code for the log and the metric, no host path", () => {
  const failure = describeFailure(new SandboxError('workspace_create_failed', 'cannot create /var/lib/brig/runs/slot-3/abc: EEXIST'));
  assert.equal(failure.kind, 'brig');
  assert.equal(failure.code, 'sandbox_failed');
  assert.equal(failure.kind === 'brig' && failure.detail, 'workspace_create_failed');
  assert.doesNotMatch(failure.message, /\/var\/lib|slot-3|EEXIST/);
});

test('a bad job or a missing toolchain is refused, never retried: its code comes from the run error table', () => {
  assert.deepEqual(describeFailure(new RequestError('limit_over_maximum', 'limit cpuMs=99999 is over the server maximum')), {
    kind: 'refused',
    code: 'limit_over_maximum',
    message: 'limit cpuMs=99999 is over the server maximum',
  });
  assert.equal(describeFailure(new LanguageUnavailableError('language_unavailable', 'no java')).kind, 'refused');
  assert.equal(describeFailure(new RequestError('limit_invalid', 'x')).code, 'limit_invalid');
  assert.equal(
    describeFailure(new RequestError('some_new_rule', 'x')).code,
    'job_invalid',
    'a code missing from the table is not passed through',
  );
  for (const code of Object.keys(RUN_ERROR_CODES)) assert.ok(isRunErrorCode(code));
});

test('an unexpected error keeps its details out of the record', () => {
  const failure = describeFailure(new TypeError("Cannot read properties of undefined (reading 'secret')"));
  assert.equal(failure.code, 'worker_failed');
  assert.doesNotMatch(failure.message, /secret/);
  assert.equal(describeFailure(new HostError('x', 'y')).code, 'sandbox_failed');
  assert.equal(describeFailure(new CancelledError()).kind, 'brig');
});

test('BullMQ retries while attempts remain', () => {
  assert.equal(queueWillRetry({ attemptsMade: 0, opts: {} }), false, 'one attempt by default');
  assert.equal(queueWillRetry({ attemptsMade: 0, opts: { attempts: 2 } }), true);
  assert.equal(queueWillRetry({ attemptsMade: 1, opts: { attempts: 2 } }), false);
});

test('active runs: the first abort reason wins, and finish forgets only its own run', () => {
  const runs = new ActiveRuns();
  const signal = runs.start('a');
  assert.equal(abortKind(signal), null);
  assert.equal(runs.abort('b', 'cancel'), false);
  assert.equal(runs.abort('a', 'cancel'), true);
  runs.abortAll('shutdown');
  assert.equal(abortKind(signal), 'cancel');
  const again = runs.start('a');
  runs.finish('a', signal);
  assert.equal(runs.size, 1, 'a stale finish removed the newer run');
  runs.finish('a', again);
  assert.equal(runs.size, 0);
});
