import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SandboxError } from '../../../../runtime/errors.ts';
import { launcherFailure } from '../../../../runtime/launcher/failure.ts';
import { EXIT_ABORTED, EXIT_OK, EXIT_SETUP } from '../../../../runtime/launcher/protocol.ts';

const EOF = { kind: 'eof' } as const;
const SIGKILL = 9;

test('a launcher that ends before go says the program never started, with its exit code', () => {
  const error = launcherFailure(EOF, { code: EXIT_ABORTED, signal: null }, null);
  assert.ok(error instanceof SandboxError);
  assert.equal(error.code, 'sandbox_setup_failed');
  assert.equal(error.message, `the launcher ended with exit code ${EXIT_ABORTED} before the program started`);
});

test('a launcher killed after go says how long the program had run, and by which signal', () => {
  const error = launcherFailure(EOF, { code: null, signal: SIGKILL }, 1234.4);
  assert.equal(error.code, 'sandbox_failed');
  assert.equal(error.message, 'the launcher ended with signal 9 after the program had run for 1234 ms');
});

test('a launcher that exits cleanly without an exit line says it did not report', () => {
  assert.equal(
    launcherFailure(EOF, { code: EXIT_OK, signal: null }, 20).message,
    'the launcher ended without reporting after the program had run for 20 ms',
  );
  assert.equal(
    launcherFailure(EOF, { code: EXIT_OK, signal: null }, null).message,
    'the launcher ended without reporting before the program started',
  );
});

test('an error line is a build failure before go, and a failure of the running sandbox after it', () => {
  const event = { kind: 'error', errno: 1, text: 'mount overlay: Operation not permitted' } as const;
  const before = launcherFailure(event, { code: EXIT_SETUP, signal: null }, null);
  assert.equal(before.code, 'sandbox_setup_failed');
  assert.equal(
    before.message,
    `the sandbox could not be built: mount overlay: Operation not permitted (errno 1, launcher exit code ${EXIT_SETUP})`,
  );
  const after = launcherFailure(
    { ...event, text: 'kill at the wall limit: Operation not permitted' },
    { code: EXIT_SETUP, signal: null },
    500,
  );
  assert.equal(after.code, 'sandbox_failed');
  assert.equal(
    after.message,
    `the sandbox failed after the program had run for 500 ms: kill at the wall limit: Operation not permitted (errno 1, launcher exit code ${EXIT_SETUP})`,
  );
});
