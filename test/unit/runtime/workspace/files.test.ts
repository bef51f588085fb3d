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
    assert.throws(() => checkFileName(name, 'files[3].name'), (e: unknown) => {
      assert.equal((e as { code: string }).code, 'file_name_invalid', `for ${JSON.stringify(name)}`);
      assert.equal((e as { field: string }).field, 'files[3].name');
      return true;
    });
  }
});

test('duplicate names and a name used as a file and a folder are refused', () => {
  assert.throws(() => checkFiles([file('a.c'), file('a.c')]), { code: 'file_name_duplicate' });
  assert.throws(() => checkFiles([file('a'), file('a/b.c')]), { code: 'file_name_conflict' });
});
