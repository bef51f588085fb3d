import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkFileName, checkFiles } from '../../../../runtime/workspace/files.ts';

const file = (name: string) => ({ name, content: Buffer.alloc(0) });

test('ordinary relative names, with subfolders, are accepted', () => {
  for (const name of ['main.py', 'Main.java', 'src/lib/util.c', '.hidden', 'a b.txt']) checkFileName(name, 'files[0].name');
});

test('names that could escape the working dir or confuse tools are refused with the field', () => {
  const bad = ['', '/etc/passwd', '../x', 'a/../../x', 'a/./b', 'a//b', 'a\\b', 'nul\0byte', 'new\nline', 'esc\u001b', 'x'.repeat(256)];
  for (const name of bad) {
    assert.throws(
      () => checkFileName(name, 'files[3].name'),
      (e: unknown) => {
        assert.equal((e as { code: string }).code, 'file_name_invalid', `for ${JSON.stringify(name)}`);
        assert.equal((e as { field: string }).field, 'files[3].name');
        return true;
      },
    );
  }
});

test('duplicate names and a name used as a file and a folder are refused', () => {
  assert.throws(() => checkFiles([file('a.c'), file('a.c')]), { code: 'file_name_duplicate' });
  assert.throws(() => checkFiles([file('a'), file('a/b.c')]), { code: 'file_name_conflict' });
});

test('a name with a lone surrogate is refused: it has no UTF-8 form and would reach the disk as U+FFFD', () => {
  for (const name of ['\ud800', '\udc00', 'a\ud800b.c', 'dir/\udfff', '\udc00\ud800']) {
    assert.throws(
      () => checkFileName(name, 'files[1].name'),
      (e: unknown) => {
        assert.equal((e as { code: string }).code, 'file_name_invalid', `for ${JSON.stringify(name)}`);
        assert.equal((e as { field: string }).field, 'files[1].name');
        assert.match((e as Error).message, /lone surrogate/);
        return true;
      },
    );
  }
});

test('a surrogate pair (a character outside the BMP) is an ordinary character', () => {
  for (const name of ['\ud83d\ude00.py', 'src/\u{1F600}/main.c', '\u{10FFFF}']) checkFileName(name, 'files[0].name');
});

test('names must be in NFC: a decomposed name is refused, its composed form accepted', () => {
  const composed = 'caf\u00e9.py';
  const decomposed = 'cafe\u0301.py';
  assert.equal(composed.normalize('NFC'), decomposed.normalize('NFC'));
  checkFileName(composed, 'files[0].name');
  checkFileName('\uac00.txt', 'files[0].name'); // a precomposed Hangul syllable
  for (const name of [decomposed, 'dir/\u1100\u1161.txt', 'A\u030a']) {
    assert.throws(
      () => checkFileName(name, 'files[0].name'),
      (e: unknown) => {
        assert.equal((e as { code: string }).code, 'file_name_invalid', `for ${JSON.stringify(name)}`);
        assert.match((e as Error).message, /NFC/);
        return true;
      },
    );
  }
});

test('no two names equal after normalisation: the NFD twin of a name is refused at its own index', () => {
  assert.throws(() => checkFiles([file('caf\u00e9.py'), file('cafe\u0301.py')]), { code: 'file_name_invalid', field: 'files[1].name' });
  assert.throws(() => checkFiles([file('caf\u00e9.py'), file('caf\u00e9.py')]), { code: 'file_name_duplicate', field: 'files[1].name' });
  // Two lone surrogates used to collide as U+FFFD: both are refused, the first one first.
  assert.throws(() => checkFiles([file('\ud800'), file('\udc00')]), { code: 'file_name_invalid', field: 'files[0].name' });
});

test('a refused name is quoted only in part, so a 1 MiB name does not make a 1 MiB answer', () => {
  const long = 'x'.repeat(1 << 20);
  assert.throws(
    () => checkFileName(long, 'files[0].name'),
    (e: unknown) => {
      assert.ok((e as Error).message.length < 300, `message of ${(e as Error).message.length} chars`);
      return true;
    },
  );
});

test('a name that a tool would read as an option or a response file is refused: -o, @args, and folders alike', () => {
  for (const name of ['-o', '--help.c', '@r.c', '@argfiles', 'src/-x.c', 'src/@r', '-dir/main.c']) {
    assert.throws(() => checkFileName(name, 'files[0].name'), { code: 'file_name_invalid', field: 'files[0].name' }, name);
  }
  for (const name of ['a-b.c', 'x@y.c', 'src/a-@.c']) checkFileName(name, 'files[0].name');
});
