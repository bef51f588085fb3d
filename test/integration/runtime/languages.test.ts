import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';

let rt: TestRuntime;
before(async () => {
  rt = await startTestRuntime('runtime/languages');
});
after(async () => {
  await rt?.close();
});

const HELLO: Record<string, string> = {
  python: 'import sys\nprint("hello", sys.stdin.read().strip())\n',
  node: 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log("hello", s.trim()))\n',
  bash: 'read x; echo hello $x\n',
  c: '#include <stdio.h>\nint main(){char b[64]; if(!fgets(b,64,stdin)) return 1; printf("hello %s", b); return 0;}\n',
  cpp: '#include <iostream>\n#include <string>\nint main(){std::string s; std::getline(std::cin,s); std::cout<<"hello "<<s<<"\\n";}\n',
  java: 'import java.util.Scanner;\npublic class Main { public static void main(String[] a){ System.out.println("hello " + new Scanner(System.in).nextLine()); } }\n',
};

for (const [language, source] of Object.entries(HELLO)) {
  test(`${language}: a program reads stdin and writes stdout`, async () => {
    const result = await rt.run(language, source, { stdin: 'world\n' });
    if (result.compile) assert.equal(result.compile.verdict, 'ok', result.compile.stderr);
    assert.ok(result.run);
    assert.equal(result.run.stdout, 'hello world\n', JSON.stringify(result));
    assert.equal(result.run.verdict, 'ok');
    assert.equal(result.run.exitCode, 0);
    assert.equal(result.run.signal, null);
    // memoryKb can read 0 (the cgroup charges in per-CPU batches); the resident set cannot.
    assert.ok(result.run.wallMs >= 0 && result.run.cpuMs >= 0 && result.run.memoryKb >= 0, JSON.stringify(result.run));
    assert.ok(result.run.maxRssKb > 0, JSON.stringify(result.run));
  });
}

test('48 MiB touched by a child process shows in both memory figures: the cgroup peak and the largest resident set', async () => {
  const source = 'import os\npid = os.fork()\nif pid == 0:\n    b = bytearray(48 << 20)\n    os._exit(0)\nos.waitpid(pid, 0)\n';
  const result = await rt.run('python', source);
  assert.equal(result.run?.verdict, 'ok', JSON.stringify(result.run));
  assert.ok(result.run.memoryKb >= 48 * 1024, JSON.stringify(result.run));
  assert.ok(result.run.maxRssKb >= 48 * 1024, JSON.stringify(result.run));
});

test('c: a compile error returns compile_error-worthy output and no run', async () => {
  const result = await rt.run('c', 'int main( { return 0; }\n');
  assert.ok(result.compile);
  assert.equal(result.compile.verdict, 'runtime_error');
  assert.match(result.compile.stderr, /error/);
  assert.equal(result.run, null);
});

test('a non-zero exit is runtime_error with the exit code', async () => {
  const result = await rt.run('python', 'import sys\nsys.exit(3)\n');
  assert.equal(result.run?.verdict, 'runtime_error');
  assert.equal(result.run?.exitCode, 3);
});
