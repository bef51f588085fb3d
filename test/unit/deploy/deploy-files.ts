/**
 * deploy/'s files, read for the cross-checks of test/unit/deploy: where
 * they are, the Dockerfile's instructions, and the variables the README's
 * Configuration table documents.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO = join(new URL('.', import.meta.url).pathname, '..', '..', '..');
export const DEPLOY = join(REPO, 'deploy');
export const deployPath = (...parts: string[]) => join(DEPLOY, ...parts);

export interface DockerInstruction {
  /** Which stage it is in (FROM … AS name), or "final". */
  stage: string;
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions, continuation lines joined, comments left out. */
export function dockerfile(path = deployPath('Dockerfile')): DockerInstruction[] {
  const joined = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const instructions: DockerInstruction[] = [];
  let stage = 'global';
  for (const line of joined
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    const [, keyword, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (keyword!.toUpperCase() === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args!)?.[1] ?? 'final';
    instructions.push({ stage, keyword: keyword!.toUpperCase(), args: args! });
  }
  return instructions;
}

/** ENV of the final stage, as name → value. */
export function dockerEnv(instructions: DockerInstruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions.filter((x) => x.stage === 'final' && x.keyword === 'ENV')) {
    for (const [, name, value] of i.args.matchAll(/(\w+)=(\S+)/g)) env[name!] = value!;
  }
  return env;
}

/** The variables of the README's Configuration table, with BRIG_DEFAULT_<LIMIT> and BRIG_MAX_<LIMIT> spelled out. */
export function documentedVariables(): Set<string> {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Tests'));
  const names = new Set<string>();
  for (const row of table.split('\n').filter((l) => l.startsWith('| `'))) {
    for (const [, name] of row.split('|')[1]!.matchAll(/`([A-Z0-9_<>]+)`/g)) names.add(name!);
  }
  return names;
}

/** Whether a variable is in the Configuration table (a limit's variable counts when its pattern is). */
export function isDocumented(name: string, documented = documentedVariables()): boolean {
  if (documented.has(name)) return true;
  return /^BRIG_(DEFAULT|MAX)_[A-Z_]+$/.test(name) && documented.has(`BRIG_${name.split('_')[1]}_<LIMIT>`);
}
