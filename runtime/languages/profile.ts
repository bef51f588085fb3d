import { readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { LIMIT_NAMES, type Limits } from '../limits.ts';
import { loadProfileFile } from '../profile-file.ts';

const limitsSchema = z.strictObject(Object.fromEntries(LIMIT_NAMES.map((n) => [n, z.number().positive().optional()]))) as z.ZodType<
  Partial<Limits>
>;
const command = z
  .array(z.string().min(1))
  .min(1)
  .refine((c) => c[0]!.startsWith('/'), 'the program must be an absolute path inside the image');

/**
 * A language is data: how to compile (optional) and run a submission, which
 * file a lone source goes into, and its default limits. Commands may use
 * {main} (the entry file), {mainStem} (it without extension), {sources}
 * (every file with one of the language's extensions, as separate arguments),
 * {memoryMb} and {heapMb} (three quarters of it) of the step's memory limit.
 */
export const languageProfileSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9+._-]*$/),
  displayName: z.string(),
  extensions: z.array(z.string().regex(/^\.[A-Za-z0-9]+$/)).min(1),
  sourceFile: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/),
  versionCommand: command,
  compile: command.optional(),
  run: command,
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
  limits: limitsSchema.default({}),
  compileLimits: limitsSchema.default({}),
});

export type LanguageProfile = z.infer<typeof languageProfileSchema>;

export function loadLanguageProfiles(dir: string): Map<string, LanguageProfile> {
  const languages = new Map<string, LanguageProfile>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const path = join(dir, file);
    const language = loadProfileFile(path, 'language', languageProfileSchema);
    if (languages.has(language.name))
      throw new ConfigError('language_profile_duplicate', `language ${language.name} is defined twice (in ${path})`);
    languages.set(language.name, language);
  }
  return languages;
}

/** The language whose extension a file name has, if exactly one claims it. */
export function languageForFile(languages: Map<string, LanguageProfile>, fileName: string): LanguageProfile | undefined {
  const ext = posix.extname(fileName).toLowerCase();
  return [...languages.values()].find((l) => l.extensions.includes(ext));
}

export interface CommandContext {
  main: string;
  sources: string[];
  memoryMb: number;
}

const HEAP_SHARE_OF_MEMORY = 0.75;

/**
 * A file name is data, never an option: names starting with - or @ are
 * refused at the door (checkFileName), and paths are also handed to tools as
 * ./name, which no tool reads as an option or a response file (gcc and
 * javac know no `--` to end their options).
 */
function asPath(name: string): string {
  return `./${name}`;
}

export function expandCommand(template: string[], ctx: CommandContext): string[] {
  const values: Record<string, string> = {
    main: asPath(ctx.main),
    mainStem: ctx.main.slice(0, ctx.main.length - posix.extname(ctx.main).length),
    memoryMb: String(Math.floor(ctx.memoryMb)),
    heapMb: String(Math.floor(ctx.memoryMb * HEAP_SHARE_OF_MEMORY)),
  };
  return template.flatMap((arg) => {
    if (arg === '{sources}') return ctx.sources.map(asPath);
    return [arg.replace(/\{(main|mainStem|memoryMb|heapMb)\}/g, (_, key: string) => values[key]!)];
  });
}
