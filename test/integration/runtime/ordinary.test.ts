/**
 * The sandbox must stay usable: threads, child processes, pipelines, files
 * in /box and /tmp and a program's own source all work as on any machine.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Limits } from '../../../runtime/limits.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { explain } from './probes.ts';

const LIMITS: Partial<Limits> = { cpuMs: 2000, wallMs: 5000, memoryMb: 128, processes: 32, outputBytes: 1 << 16, diskMb: 16 };

let rt: TestRuntime;
before(async () => {
  rt = await startTestRuntime('runtime/ordinary', { slots: 2 });
});
after(async () => {
  await rt?.close();
});

async function runOk(language: string, source: string, limits: Partial<Limits> = {}): Promise<string> {
  const r = await rt.run(language, source, { limits: { ...LIMITS, ...limits } });
  if (r.compile) assert.equal(r.compile.verdict, 'ok', `compile failed:\n${explain(r.compile)}`);
  assert.equal(r.run?.verdict, 'ok', explain(r.run));
  assert.equal(r.run!.exitCode, 0, explain(r.run));
  return r.run!.stdout;
}

test('python: four threads run and join', async () => {
  const stdout = await runOk(
    'python',
    `
import threading
sums = [0] * 4
def work(i):
    sums[i] = sum(range(i * 100000, (i + 1) * 100000))
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(sums), threading.active_count())
`,
  );
  assert.equal(stdout, `${(400000 * 399999) / 2} 1\n`);
});

test('c: four pthreads run and join', async () => {
  const stdout = await runOk(
    'c',
    `
#include <pthread.h>
#include <stdio.h>
static long sums[4];
static void *work(void *arg) {
  long i = (long)arg;
  for (long n = i * 100000; n < (i + 1) * 100000; n++) sums[i] += n;
  return NULL;
}
int main(void) {
  pthread_t t[4];
  for (long i = 0; i < 4; i++) if (pthread_create(&t[i], NULL, work, (void *)i)) { perror("pthread_create"); return 1; }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  printf("%ld\\n", sums[0] + sums[1] + sums[2] + sums[3]);
  return 0;
}
`,
  );
  assert.equal(stdout, `${(400000 * 399999) / 2}\n`);
});

test('node: a worker thread runs and answers', async () => {
  const stdout = await runOk(
    'node',
    `
const { Worker } = require('node:worker_threads');
const w = new Worker('require("node:worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
w.on('message', (m) => console.log('worker says', m));
`,
    { memoryMb: 512, processes: 64 },
  );
  assert.equal(stdout, 'worker says 42\n');
});

test('bash: a pipeline of child processes (seq | sort -n | tail -1)', async () => {
  const stdout = await runOk('bash', 'seq 1 1000 | sort -n | tail -1\n');
  assert.equal(stdout, '1000\n');
});

test('python: subprocess runs other programs of the image', async () => {
  const stdout = await runOk(
    'python',
    `
import subprocess
print(subprocess.run(['ls', '/box'], capture_output=True, text=True, check=True).stdout.strip())
print(subprocess.run(['python3', '-c', 'print(6 * 7)'], capture_output=True, text=True, check=True).stdout.strip())
print(subprocess.run('echo a b c | wc -w', shell=True, capture_output=True, text=True, check=True).stdout.strip())
`,
  );
  assert.equal(stdout, 'main.py\n42\n3\n');
});

test('python: files and directories in /box and /tmp can be made, renamed, read and removed', async () => {
  const stdout = await runOk(
    'python',
    `
import os, tempfile
os.makedirs('/box/out/deep', exist_ok=True)
with open('/box/out/deep/a.txt', 'w') as f: f.write('box data')
os.rename('/box/out/deep/a.txt', '/box/out/b.txt')
with tempfile.NamedTemporaryFile('w+', delete=False) as f:
    f.write('tmp data'); tmp = f.name
print(open('/box/out/b.txt').read(), open(tmp).read(), tmp.startswith('/tmp/'))
os.remove(tmp); os.remove('/box/out/b.txt')
print(sorted(os.listdir('/box')), os.path.exists(tmp))
`,
  );
  assert.equal(stdout, "box data tmp data True\n['main.py', 'out'] False\n");
});

test('python and c: a program can read its own source file', async () => {
  const python = "print(open(__file__).read(), end='')\n";
  assert.equal(await runOk('python', python), python);
  const c =
    '#include <stdio.h>\nint main(void) {\n  FILE *f = fopen("/box/main.c", "r");\n  int ch;\n  if (!f) return 1;\n  while ((ch = fgetc(f)) != EOF) putchar(ch);\n  return 0;\n}\n';
  assert.equal(await runOk('c', c), c);
});

test('python: long arguments arrive whole, however the go message is split on its way to the sandbox', async () => {
  // 64 arguments of 4,096 characters, 3 bytes each in UTF-8: about 770 KiB,
  // more than a unix socket takes in one piece, so init reads it in parts.
  const args = Array.from({ length: 64 }, (_, i) => String.fromCharCode(0x4e00 + i).repeat(4096));
  const r = await rt.run(
    'python',
    'import sys, hashlib\nprint(len(sys.argv) - 1, hashlib.sha256("\\0".join(sys.argv[1:]).encode()).hexdigest())\n',
    {
      limits: LIMITS,
      args,
    },
  );
  assert.equal(r.run?.verdict, 'ok', explain(r.run));
  assert.equal(r.run!.stdout, `64 ${createHash('sha256').update(args.join('\0')).digest('hex')}\n`);
});
