import { BrigError, ConfigError, HostError, LanguageUnavailableError, RequestError } from '../runtime/errors.ts';
import { EXIT } from './exit-codes.ts';

const HELP = `brig: sandboxed code execution for online judges and playgrounds

Usage:
  brig serve                   run the HTTP API and a worker (starts Redis if REDIS_URL is unset)
  brig api                     run only the HTTP API
  brig worker                  run only a worker
  brig run [options] FILE...   compile and run files in a local sandbox (no Redis)
  brig doctor                  check every kernel feature and tool Brig needs
  brig help                    show this help

Run 'brig COMMAND --help' for a command's options.

Exit codes:
  0  the command worked (run: the sandbox worked, whatever the verdict;
     serve/api/worker: a clean shutdown after SIGTERM or SIGINT)
  1  Brig failed (sandbox error), or a doctor check failed
  2  bad usage (options, files, language, limits)
  3  the host is not ready (not root, kernel feature, launcher, profile)
`;

type Command = (args: string[]) => Promise<number>;

/** Loaded on demand: `brig run` need not load Express and BullMQ. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./commands/run.ts')).runCommand,
  doctor: async () => (await import('./commands/doctor.ts')).doctorCommand,
  serve: async () => (await import('./commands/serve.ts')).serviceCommand('serve'),
  api: async () => (await import('./commands/serve.ts')).serviceCommand('api'),
  worker: async () => (await import('./commands/serve.ts')).serviceCommand('worker'),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP);
    return command ? EXIT.OK : EXIT.USAGE;
  }
  const load = COMMANDS[command];
  if (!load) {
    process.stderr.write(`brig: unknown command ${JSON.stringify(command)}; run 'brig --help'\n`);
    return EXIT.USAGE;
  }
  try {
    return await (await load())(rest);
  } catch (error) {
    process.stderr.write(`brig: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodeFor(error);
  }
}

/** The one place where errors become exit codes. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof RequestError || error instanceof LanguageUnavailableError) return EXIT.USAGE;
  if (error instanceof HostError || error instanceof ConfigError) return EXIT.HOST;
  if (error instanceof BrigError) return EXIT.FAILURE;
  if (
    (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
  )
    return EXIT.USAGE;
  return EXIT.FAILURE;
}

process.exitCode = await main(process.argv.slice(2));
