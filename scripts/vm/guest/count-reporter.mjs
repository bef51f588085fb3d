/**
 * A node:test reporter for the test:vm guest: one JSON object with the
 * step's counts and failures, read by the host (scripts/vm/results.ts).
 * Plain JavaScript: node loads reporters before tsx's hooks apply.
 *
 * Tests left out by --test-name-pattern are not part of the subset and are
 * not counted; a test skipped for a reason of its own is. A file whose
 * process fails outside any test comes as a failure named after the file.
 */
const NOT_SELECTED = 'test name does not match pattern';
/** Enough of an error to tell what failed; the console has the rest. */
const MESSAGE_CHARS = 1500;

function messageOf(details) {
  const error = details?.error;
  const cause = error?.cause ?? error;
  let text = cause?.message ?? String(cause ?? 'failed');
  // A file whose process failed outside its tests: how it ended is all there is to go on.
  if (error?.exitCode !== undefined || error?.signal)
    text += ` (the file's process exited ${error.exitCode ?? '-'}, signal ${error.signal ?? 'none'})`;
  return text.length > MESSAGE_CHARS ? `${text.slice(0, MESSAGE_CHARS)}…` : text;
}

export default async function* countReporter(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, todo: 0, failures: [] };
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    if (data.details?.type === 'suite') continue;
    if (data.skip === NOT_SELECTED) continue;
    if (data.todo !== undefined && data.todo !== false) counts.todo++;
    else if (data.skip !== undefined && data.skip !== false) counts.skipped++;
    else if (event.type === 'test:pass') counts.passed++;
    else {
      counts.failed++;
      counts.failures.push({ name: data.name, file: data.file, message: messageOf(data.details) });
    }
  }
  yield `${JSON.stringify(counts)}\n`;
}
