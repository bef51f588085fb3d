/**
 * deploy/systemd/: systemd's own checker must find nothing to say about the
 * units (it reports unknown keys and bad values as warnings, exit 0: any
 * output is a failure here). They cannot be started on this machine, whose
 * pid 1 is not systemd.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Checklist, expect } from './checks.ts';
import { run } from './command.ts';

export async function checkSystemdUnits(checks: Checklist, repoRoot: string): Promise<void> {
  const dir = join(repoRoot, 'deploy', 'systemd');
  const units = readdirSync(dir)
    .filter((f) => f.endsWith('.service'))
    .map((f) => join(dir, f));
  await checks.check(`systemd-analyze verify ${units.length} units`, async () => {
    const result = await run('systemd-analyze', ['verify', ...units]);
    const said = `${result.stdout}${result.stderr}`.trim();
    expect(result.code === 0 && said === '', said || `exit ${result.code}`);
    return units.map((u) => u.split('/').at(-1)).join(', ');
  });
}
