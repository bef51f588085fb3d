import { parseArgs } from 'node:util';
import { loadRuntimeConfig } from '../../services/shared/config.ts';
import { type Check, hostChecks, sandboxChecks } from '../doctor/checks.ts';
import { EXIT } from '../exit-codes.ts';

const HELP = `Usage: brig doctor

Checks every kernel feature and tool the runtime needs (root, user namespaces,
overlayfs, seccomp and libseccomp, the launcher, cgroups and their
controllers), then builds real sandboxes to ask each language's toolchain for
its version. Prints one line per check, with what to do when one fails.
Exit code 0 when all pass, 1 otherwise.
`;

export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h', default: false } } });
  if (values.help) {
    process.stdout.write(HELP);
    return EXIT.OK;
  }
  const config = loadRuntimeConfig();
  const host = hostChecks(config);
  host.forEach(print);
  const sandbox = host.every((c) => c.ok)
    ? await sandboxChecks(config)
    : [{ name: 'sandbox', ok: false, detail: 'skipped', fix: 'fix the failed checks above first' }];
  sandbox.forEach(print);
  return [...host, ...sandbox].every((c) => c.ok) ? EXIT.OK : EXIT.FAILURE;
}

function print(check: Check): void {
  const line = check.ok
    ? `ok    ${check.name}: ${check.detail}`
    : `FAIL  ${check.name}: ${check.detail}\n      fix: ${check.fix ?? 'see the README'}`;
  process.stdout.write(`${line}\n`);
}
