/**
 * A submitted file name never becomes an option of a tool. A review got gcc
 * to read options from a submission's `@r.c` (`-wrapper`, which ran the
 * attacker's script at compile time). Names starting with - or @ are refused
 * by the runtime itself, not only by the API; and every path Brig hands a
 * tool is written ./name, which gcc and javac read as a file, never as a
 * response file — shown here with the tools themselves, inside a sandbox.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';

let rt: TestRuntime;
before(async () => {
  rt = await startTestRuntime('runtime/file-names-are-data');
});
after(async () => {
  await rt?.close();
});

const MAIN_C = '#include <stdio.h>\nint main(void){ printf("%d\\n", ANSWER); return 0; }\n';

test('the runtime refuses a submission with a file named like an option or a response file', async () => {
  for (const name of ['@r.c', '-o', 'src/@argfiles']) {
    await assert.rejects(
      rt.run('c', MAIN_C, {
        files: [
          { name: 'main.c', content: Buffer.from(MAIN_C) },
          { name, content: Buffer.from('-DANSWER=42') },
        ],
      }),
      { code: 'file_name_invalid' },
      name,
    );
  }
});

test('gcc and javac read @name as options, but ./@name as a plain file: how Brig passes paths', async () => {
  // Made inside the sandbox, where nothing checks names: what the tools do with each spelling.
  const script = [
    'cd /tmp',
    // gcc and javac read `@name` as a list of options from the file `name`.
    "printf '%s\\n' '-DANSWER=41' | tee opts > @opts",
    "cat > main.c <<'EOF'",
    MAIN_C.trimEnd(),
    'EOF',
    '/usr/bin/gcc -o bare @opts main.c 2>&1 && echo "gcc-bare: $(./bare)" || echo "gcc-bare: failed"',
    '/usr/bin/gcc -o dotted ./@opts main.c > gcc.log 2>&1 && echo "gcc-dotted: compiled" || echo "gcc-dotted: refused $(head -c 200 gcc.log | tr "\\n" " ")"',
    "printf '%s\\n' '-version' | tee jargs > @jargs",
    '/usr/bin/javac -J-XX:MaxRAM=256m -J-XX:+UseSerialGC @jargs > javac-bare.log 2>&1 && echo "javac-bare: ran its options" || echo "javac-bare: failed $(head -c 300 javac-bare.log | tr "\\n" " ")"',
    '/usr/bin/javac -J-XX:MaxRAM=256m -J-XX:+UseSerialGC ./@jargs > javac.log 2>&1 && echo "javac-dotted: ran" || echo "javac-dotted: refused $(head -c 200 javac.log | tr "\\n" " ")"',
  ].join('\n');
  const result = await rt.run('bash', script, { limits: { processes: 64, memoryMb: 1024, wallMs: 30_000, cpuMs: 20_000 } });
  const out = result.run?.stdout ?? '';
  assert.match(out, /^gcc-bare: 41$/m, `a bare @name names an options file to gcc:\n${out}\n${result.run?.stderr}`);
  // ./@opts is just another input: its -DANSWER=41 never reaches the compiler.
  assert.match(out, /^gcc-dotted: refused .*ANSWER.* undeclared/m, out);
  assert.match(out, /^javac-bare: ran its options$/m, out);
  assert.match(
    out,
    /^javac-dotted: refused error: invalid flag: \.\/@jargs/m,
    'javac takes ./@jargs for a (bad) name, never for its argument file',
  );
});
