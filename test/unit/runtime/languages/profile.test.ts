import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../../../runtime/errors.ts';
import { expandCommand, languageForFile, loadLanguageProfiles } from '../../../../runtime/languages/profile.ts';

const profilesDir = new URL('../../../../profiles/languages', import.meta.url).pathname;

test('the shipped profiles load: python, node, c, cpp, java and bash', () => {
  const languages = loadLanguageProfiles(profilesDir);
  assert.deepEqual([...languages.keys()].sort(), ['bash', 'c', 'cpp', 'java', 'node', 'python']);
  assert.equal(languageForFile(languages, 'x.PY')?.name, 'python');
  assert.equal(languageForFile(languages, 'Main.java')?.name, 'java');
  assert.equal(languageForFile(languages, 'x.unknown'), undefined);
});

test('command templates expand the entry file, its stem, the sources (as ./paths, never options) and the memory limit', () => {
  const argv = expandCommand(['/usr/bin/javac', '-J-XX:MaxRAM={memoryMb}m', '{sources}', '--heap={heapMb}', '{mainStem}', '{main}'], {
    main: 'Hello.java',
    sources: ['Hello.java', 'lib/Util.java'],
    memoryMb: 400,
  });
  assert.deepEqual(argv, ['/usr/bin/javac', '-J-XX:MaxRAM=400m', './Hello.java', './lib/Util.java', '--heap=300', 'Hello', './Hello.java']);
});

test('a malformed language profile is a ConfigError naming the file and the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brig-lang-'));
  try {
    writeFileSync(
      join(dir, 'bad.json'),
      JSON.stringify({
        name: 'bad',
        displayName: 'Bad',
        extensions: ['.b'],
        sourceFile: 'main.b',
        versionCommand: ['b'],
        run: ['/usr/bin/b'],
      }),
    );
    assert.throws(
      () => loadLanguageProfiles(dir),
      (e: unknown) => e instanceof ConfigError && /bad\.json/.test(e.message) && /versionCommand/.test(e.message),
    );
    writeFileSync(join(dir, 'bad.json'), '{ not json');
    assert.throws(() => loadLanguageProfiles(dir), { code: 'language_profile_unreadable' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
