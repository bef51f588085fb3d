import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { layoutImage, resolveInImage } from '../../../../runtime/images/layout.ts';
import { loadImageProfile } from '../../../../runtime/images/profile.ts';

const work = mkdtempSync(join(tmpdir(), 'brig-image-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('the host image exposes the toolchain folders of /usr read-only over a skeleton with a generated passwd and no host secrets', () => {
  const profile = loadImageProfile(new URL('../../../../profiles/images/host.json', import.meta.url).pathname);
  const image = layoutImage(profile, join(work, 'images'));
  for (const wanted of ['/usr/bin', '/usr/lib', '/usr/share'])
    assert.ok(
      image.binds.some((b) => b.source === wanted && b.target === wanted),
      `no bind of ${wanted}`,
    );
  for (const bind of image.binds) {
    assert.ok(!/^\/(root|home|var|proc|sys)(\/|$)/.test(bind.source), `host image must not bind ${bind.source}`);
    // The administrator's part of /usr: /usr/local (an npmrc with registry credentials was seen there), npm's global /usr/etc, sources.
    assert.ok(!/^\/usr(\/(local|etc|src|sbin|libexec|games))?$/.test(bind.source), `host image must not bind ${bind.source}`);
    assert.notEqual(bind.source, '/etc/shadow');
    assert.notEqual(bind.source, '/etc');
  }
  for (const hidden of ['/usr/local/bin', '/usr/local/etc/npmrc', '/usr/etc/npmrc', '/usr/src', '/usr/sbin/useradd']) {
    assert.equal(resolveInImage(image, hidden), null, `${hidden} is visible in the host image`);
  }
  assert.notEqual(resolveInImage(image, '/usr/bin/env'), null);
  const passwd = readFileSync(join(image.lowers[0]!, 'etc/passwd'), 'utf8');
  assert.match(passwd, /^brig:x:1000:1000:/m);
  assert.deepEqual(
    passwd
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':')[0]),
    ['root', 'brig', 'nobody'],
  );
  // The same layout twice reuses the same content-addressed skeleton.
  assert.deepEqual(layoutImage(profile, join(work, 'images')), image);
});

test('a directory image uses the rootfs folder below a mount-point layer, and resolves symlinks inside the image', () => {
  const rootfs = join(work, 'rootfs');
  mkdirSync(join(rootfs, 'usr/bin'), { recursive: true });
  writeFileSync(join(rootfs, 'usr/bin/python3.11'), '');
  symlinkSync('python3.11', join(rootfs, 'usr/bin/python3'));
  symlinkSync('usr/bin', join(rootfs, 'bin'));
  const profilePath = join(work, 'dir.json');
  writeFileSync(profilePath, JSON.stringify({ name: 'dir', kind: 'directory', rootfs }));
  const image = layoutImage(loadImageProfile(profilePath), join(work, 'images'));
  assert.equal(image.lowers.at(-1), rootfs);
  assert.equal(resolveInImage(image, '/bin/python3'), join(rootfs, 'usr/bin/python3.11'));
  assert.equal(resolveInImage(image, '/usr/bin/java'), null);
});

test('an image profile with a relative path or an unknown field is refused', () => {
  const bad = join(work, 'bad.json');
  writeFileSync(bad, JSON.stringify({ name: 'x', kind: 'directory', rootfs: 'relative/path' }));
  assert.throws(() => loadImageProfile(bad), { code: 'image_profile_invalid' });
  writeFileSync(bad, JSON.stringify({ name: 'x', kind: 'host', extra: true }));
  assert.throws(() => loadImageProfile(bad), { code: 'image_profile_invalid' });
});

test('masks hide paths inside the image, toolchains under them included, and must be absolute', () => {
  const profilePath = join(work, 'masked.json');
  writeFileSync(
    profilePath,
    JSON.stringify({
      name: 'masked',
      kind: 'host',
      binds: [
        { source: '/usr/bin', target: '/usr/bin' },
        { source: '/usr/lib', target: '/usr/lib' },
      ],
      masks: ['/usr/lib/jvm'],
    }),
  );
  const image = layoutImage(loadImageProfile(profilePath), join(work, 'images'));
  assert.deepEqual(image.masks, ['/usr/lib/jvm']);
  assert.equal(resolveInImage(image, '/usr/lib/jvm'), null);
  assert.equal(resolveInImage(image, '/usr/lib/jvm/default-java/bin/java'), null);
  assert.notEqual(resolveInImage(image, '/usr/lib'), null);
  writeFileSync(profilePath, JSON.stringify({ name: 'masked', kind: 'host', masks: ['usr/local'] }));
  assert.throws(() => loadImageProfile(profilePath), { code: 'image_profile_invalid' });
  writeFileSync(profilePath, JSON.stringify({ name: 'masked', kind: 'host', masks: ['/usr/../etc'] }));
  assert.throws(() => loadImageProfile(profilePath), { code: 'image_profile_invalid' });
});
