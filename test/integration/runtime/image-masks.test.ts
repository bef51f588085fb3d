/**
 * An image profile's masks, in a real sandbox: the host image with a folder,
 * a file and a toolchain masked, and a path that does not exist.
 */
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LanguageUnavailableError } from '../../../runtime/errors.ts';
import { Submission } from '../../../runtime/submission.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { explain } from './probes.ts';

const repoProfiles = new URL('../../../profiles', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'brig-masks-'));
chmodSync(work, 0o755);
const MASKED_FOLDER = '/usr/share/doc';
const MASKED_FILE = '/usr/share/common-licenses/GPL-3';
const MASKED_TOOLCHAIN = '/usr/lib/jvm';
const MISSING = '/usr/share/brig-no-such-path';
let rt: TestRuntime;

before(async () => {
  const profiles = join(work, 'profiles');
  cpSync(repoProfiles, profiles, { recursive: true });
  const host = JSON.parse(readFileSync(join(profiles, 'images/host.json'), 'utf8'));
  writeFileSync(
    join(profiles, 'images/masked.json'),
    JSON.stringify({ ...host, name: 'masked', masks: [MASKED_FOLDER, MASKED_FILE, MASKED_TOOLCHAIN, MISSING] }),
  );
  rt = await startTestRuntime('runtime/image-masks', { profilesDir: profiles, image: 'masked', slots: 1 });
});
after(async () => {
  await rt?.close();
  rmSync(work, { recursive: true, force: true });
});

test('a masked folder is empty and read-only, a masked file reads empty, a missing path is skipped', {
  skip: !existsSync(MASKED_FILE) && `${MASKED_FILE} is not on this host`,
}, async () => {
  const script = [
    `echo "folder: $(ls -A ${MASKED_FOLDER} | wc -l) entries"`,
    `echo "file: $(wc -c < ${MASKED_FILE}) bytes"`,
    `touch ${MASKED_FOLDER}/x 2>/dev/null && echo "write folder: ok" || echo "write folder: refused"`,
    `echo "unmasked: $(ls /usr/share | wc -l) entries"`,
  ].join('\n');
  const { run } = await rt.run('bash', script);
  assert.equal(run?.verdict, 'ok', explain(run));
  assert.match(run!.stdout, /^folder: 0 entries$/m, explain(run));
  assert.match(run!.stdout, /^file: 0 bytes$/m, explain(run));
  assert.match(run!.stdout, /^write folder: refused$/m, explain(run));
  assert.match(run!.stdout, /^unmasked: [1-9]\d* entries$/m, `the rest of /usr/share went with the mask:\n${explain(run)}`);
});

test('a language whose toolchain is masked is unavailable, not started', async () => {
  await assert.rejects(
    Submission.open(rt.runtime, { language: 'java', files: [{ name: 'Main.java', content: Buffer.from('class Main {}') }] }),
    (e: unknown) => {
      assert.ok(e instanceof LanguageUnavailableError, String(e));
      assert.equal(e.code, 'language_unavailable');
      return true;
    },
  );
});
