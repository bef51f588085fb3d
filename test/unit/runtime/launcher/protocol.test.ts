import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { HEADER_CONSTANTS, parseStatusLine } from '../../../../runtime/launcher/protocol.ts';

const header = readFileSync(new URL('../../../../runtime/launcher/protocol.h', import.meta.url), 'utf8');

function headerDefines(): Map<string, number | string> {
  const defines = new Map<string, number | string>();
  for (const match of header.matchAll(/^#define\s+(BRIG_[A-Z_]+)\s+(\d+|'.')/gm)) {
    const value = match[2]!;
    defines.set(match[1]!, value.startsWith("'") ? value[1]! : Number(value));
  }
  return defines;
}

test('every constant of protocol.h has the same value in protocol.ts, and the other way round', () => {
  const defines = headerDefines();
  assert.ok(defines.size >= 10, `parsed only ${defines.size} defines from protocol.h`);
  assert.deepEqual(Object.fromEntries(defines), HEADER_CONSTANTS);
});

test('status lines parse into events, and garbage is ignored', () => {
  assert.deepEqual(parseStatusLine('ready 1234'), { kind: 'ready', initPid: 1234 });
  assert.deepEqual(parseStatusLine('exit 3 0 1500 123456789012345 1320'), {
    kind: 'exit',
    exitCode: 3,
    signal: null,
    wallUs: 1500,
    execNs: 123456789012345n,
    maxRssKb: 1320,
  });
  assert.deepEqual(parseStatusLine('exit -1 9 -1 -1 -1'), {
    kind: 'exit',
    exitCode: null,
    signal: 9,
    wallUs: null,
    execNs: null,
    maxRssKb: null,
  });
  assert.equal(parseStatusLine('exit 0 0 1500'), null, 'an exit line without the exec time');
  assert.equal(parseStatusLine('exit 0 0 1500 1'), null, 'an exit line without the resident set');
  assert.deepEqual(parseStatusLine('error 13 mount overlay: Permission denied'), {
    kind: 'error',
    errno: 13,
    text: 'mount overlay: Permission denied',
  });
  assert.equal(parseStatusLine('ready'), null);
  assert.equal(parseStatusLine('exit x 0 1'), null);
  assert.equal(parseStatusLine('hello world'), null);
});
