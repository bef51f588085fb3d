import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LanguageUnavailableError } from '../../../runtime/errors.ts';
import { Submission } from '../../../runtime/submission.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';

const repoProfiles = new URL('../../../profiles', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'brig-dirimage-'));
chmodSync(work, 0o755);
let rt: TestRuntime;

/**
 * A directory image made here: a rootfs folder holding one static binary and
 * nothing else, described by an image profile and a language that runs it.
 */
before(async () => {
  const rootfs = join(work, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  const source = join(work, 'hello.c');
  writeFileSync(
    source,
    '#include <stdio.h>\n#include <unistd.h>\nint main(){printf("static hello, uid %d\\n", (int)getuid()); return access("/usr/bin/python3", F_OK) == 0;}\n',
  );
  const cc = spawnSync('cc', ['-static', '-O2', '-o', join(rootfs, 'bin/hello'), source], { encoding: 'utf8' });
  assert.equal(cc.status, 0, `cc -static failed: ${cc.stderr}`);
  const profiles = join(work, 'profiles');
  cpSync(repoProfiles, profiles, { recursive: true });
  writeFileSync(join(profiles, 'images/static.json'), JSON.stringify({ name: 'static', kind: 'directory', rootfs }));
  writeFileSync(
    join(profiles, 'languages/static.json'),
    JSON.stringify({
      name: 'static',
      displayName: 'a static binary',
      extensions: ['.static'],
      sourceFile: 'input.static',
      versionCommand: ['/bin/hello'],
      run: ['/bin/hello'],
    }),
  );
  rt = await startTestRuntime('runtime/directory-image', { profilesDir: profiles, image: 'static', slots: 1 });
});
after(async () => {
  await rt?.close();
  rmSync(work, { recursive: true, force: true });
});

test('a directory image runs its own binary as the sandbox user, and shows nothing of the host /usr', async () => {
  const result = await rt.run('static', '');
  assert.equal(result.run?.stdout, 'static hello, uid 1000\n', result.run?.stderr);
  assert.equal(result.run?.verdict, 'ok', 'the host /usr/bin/python3 must not be visible in a directory image');
});

test('a language whose toolchain the image lacks is reported unavailable, not crashed on', async () => {
  await assert.rejects(
    Submission.open(rt.runtime, { language: 'python', files: [{ name: 'main.py', content: Buffer.from('print(1)') }] }),
    (e: unknown) => {
      assert.ok(e instanceof LanguageUnavailableError);
      assert.equal(e.code, 'language_unavailable');
      assert.match(e.message, /\/usr\/bin\/python3/);
      return true;
    },
  );
  assert.deepEqual(rt.runtime.missingTools(rt.runtime.languages.get('java')!), ['/usr/bin/javac', '/usr/bin/java']);
});
