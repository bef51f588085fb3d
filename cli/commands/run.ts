import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { RequestError } from '../../runtime/errors.ts';
import { languageForFile } from '../../runtime/languages/profile.ts';
import type { Limits } from '../../runtime/limits.ts';
import type { StepResult } from '../../runtime/result.ts';
import { Runtime } from '../../runtime/runtime.ts';
import { runSubmission } from '../../runtime/submission.ts';
import { loadRuntimeConfig } from '../../services/shared/config.ts';
import { EXIT } from '../exit-codes.ts';

const HELP = `Usage: brig run [options] FILE...

Compiles (if the language needs it) and runs FILEs in a local sandbox, without
Redis. The first FILE is the entry point; its extension picks the language.

Options:
  --language L        python, node, c, cpp, java or bash (default: from the extension)
  --stdin FILE        feed FILE to the program's standard input
  --cpu-ms N          CPU time limit, all processes together
  --wall-ms N         wall-clock limit
  --memory-mb N       memory limit
  --processes N       processes and threads at once
  --output-bytes N    stdout plus stderr
  --json              print {compile, run} as JSON
  -h, --help          show this help

Limits default to the language's, then the server's (BRIG_DEFAULT_*), and may
not exceed BRIG_MAX_*. Exit code 0 means the sandbox worked, whatever the
program's verdict; see 'brig --help' for the others.
`;

const LIMIT_OPTIONS = {
  'cpu-ms': 'cpuMs',
  'wall-ms': 'wallMs',
  'memory-mb': 'memoryMb',
  processes: 'processes',
  'output-bytes': 'outputBytes',
} as const;

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      language: { type: 'string' },
      stdin: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      ...Object.fromEntries(Object.keys(LIMIT_OPTIONS).map((o) => [o, { type: 'string' as const }])),
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  if (positionals.length === 0) {
    process.stderr.write('brig run: give at least one FILE; see brig run --help\n');
    return EXIT.USAGE;
  }
  const limits: Partial<Limits> = {};
  for (const [option, key] of Object.entries(LIMIT_OPTIONS)) {
    const text = (values as Record<string, unknown>)[option];
    if (typeof text !== 'string') continue;
    const value = Number(text);
    if (!Number.isInteger(value) || value <= 0)
      throw new RequestError('limit_invalid', `--${option} must be a positive whole number, got ${JSON.stringify(text)}`, {
        field: option,
      });
    limits[key] = value;
  }
  const files = positionals.map((path) => ({ name: basename(path), content: readInput(path) }));
  const stdin = typeof values.stdin === 'string' ? readInput(values.stdin) : Buffer.alloc(0);

  const runtime = await Runtime.create(loadRuntimeConfig(process.env, { slots: 1 }));
  try {
    const language = typeof values.language === 'string' ? values.language : languageForFile(runtime.languages, files[0]!.name)?.name;
    if (!language)
      throw new RequestError('language_unknown', `cannot tell the language of ${files[0]!.name}: pass --language`, { field: 'language' });
    const result = await runSubmission(runtime, { language, files, limits }, stdin);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      if (result.compile && result.compile.verdict !== 'ok') report('compile', result.compile);
      if (result.run) report('run', result.run);
    }
    return EXIT.OK;
  } finally {
    await runtime.close();
  }
}

function readInput(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new RequestError('file_unreadable', `cannot read ${path}: ${(cause as Error).message}`, { field: path, cause });
  }
}

function report(name: string, step: StepResult): void {
  process.stdout.write(step.stdout);
  process.stderr.write(step.stderr);
  const end = step.signal !== null ? `signal=${step.signal}` : `exit=${step.exitCode}`;
  process.stderr.write(
    `brig: ${name} verdict=${step.verdict} ${end} cpu=${step.cpuMs}ms wall=${step.wallMs}ms memory=${step.memoryKb}KB rss=${step.maxRssKb}KB${step.truncated ? ' truncated' : ''}\n`,
  );
}
