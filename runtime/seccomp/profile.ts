/**
 * Parses and validates a seccomp profile in the OCI runtime-spec format
 * (linux.seccomp of config.json, also what Docker's --security-opt reads).
 *
 * Supported: defaultAction, defaultErrnoRet, architectures, and syscalls[] with
 * names, action, errnoRet and args. Top-level and per-rule "comment" strings
 * and a top-level "description" are accepted and ignored.
 *
 * Rejected on purpose, with a message saying so:
 * - Docker's includes/excludes/archMap: they make rules depend on the caller's
 *   capabilities and kernel; a Brig profile states the final rules instead.
 * - flags, listenerPath, listenerMetadata and SCMP_ACT_NOTIFY: the launcher
 *   loads filters with no flags and Brig runs no seccomp agent.
 * - two comparisons on the same argument in one rule (libseccomp 2.5 refuses
 *   them) and an unconditional rule sharing a syscall with any other rule
 *   (libseccomp silently lets one override the other).
 *
 * assertLauncherSyscallsAllowed() adds what the runtime needs of a profile it
 * runs programs under.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { SCMP_CMP } from './libseccomp.ts';

/** Arguments are numbered 0..5: struct seccomp_data has six. */
export const MAX_SYSCALL_ARG_INDEX = 5;
/** The kernel caps a filter's errno at MAX_ERRNO. */
export const MAX_ERRNO = 4095;
/** libseccomp 2.5 refuses SCMP_ACT_ERRNO(MAX_ERRNO) itself (EINVAL), though it takes SCMP_ACT_TRACE(MAX_ERRNO). */
export const MAX_ACT_ERRNO = MAX_ERRNO - 1;
/** What runc and Docker return when a rule says SCMP_ACT_ERRNO without errnoRet. */
export const DEFAULT_ERRNO_RET = 1; // EPERM

export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_LOG',
  'SCMP_ACT_ALLOW',
] as const;
export type SeccompActionName = (typeof SECCOMP_ACTIONS)[number];
/**
 * What the program's process calls once the filter is loaded, on the way to
 * its execve: it is parked with the filter in place before the go-ahead
 * (runtime/launcher/launcher.c, program_main), then waits for it (read),
 * enters its working directory (chdir) and executes the program.
 */
export const LAUNCHER_SYSCALLS = ['read', 'chdir', 'execve'] as const;
/** Actions that let a call through. */
const ALLOWING_ACTIONS: readonly SeccompActionName[] = ['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG'];
/** Only these actions carry data, so only they may have errnoRet. */
const ACTIONS_WITH_ERRNO_RET: readonly SeccompActionName[] = ['SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE'];

export const SECCOMP_OPERATORS = Object.keys(SCMP_CMP) as (keyof typeof SCMP_CMP)[];
export type SeccompOperator = keyof typeof SCMP_CMP;

/** OCI architecture names → the names seccomp_arch_resolve_name() takes. */
export const SECCOMP_ARCHES = {
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_ARM: 'arm',
  SCMP_ARCH_AARCH64: 'aarch64',
  SCMP_ARCH_MIPS: 'mips',
  SCMP_ARCH_MIPS64: 'mips64',
  SCMP_ARCH_MIPS64N32: 'mips64n32',
  SCMP_ARCH_MIPSEL: 'mipsel',
  SCMP_ARCH_MIPSEL64: 'mipsel64',
  SCMP_ARCH_MIPSEL64N32: 'mipsel64n32',
  SCMP_ARCH_PPC: 'ppc',
  SCMP_ARCH_PPC64: 'ppc64',
  SCMP_ARCH_PPC64LE: 'ppc64le',
  SCMP_ARCH_S390: 's390',
  SCMP_ARCH_S390X: 's390x',
  SCMP_ARCH_PARISC: 'parisc',
  SCMP_ARCH_PARISC64: 'parisc64',
  SCMP_ARCH_RISCV64: 'riscv64',
  SCMP_ARCH_LOONGARCH64: 'loongarch64',
} as const;
export type SeccompArchName = keyof typeof SECCOMP_ARCHES;

export interface SeccompArg {
  index: number;
  /** For SCMP_CMP_MASKED_EQ this is the mask. */
  value: number;
  /** For SCMP_CMP_MASKED_EQ the value the masked argument must equal; otherwise unused. */
  valueTwo: number;
  op: SeccompOperator;
}

export interface SeccompRule {
  names: string[];
  action: SeccompActionName;
  errnoRet?: number;
  args: SeccompArg[];
}

export interface SeccompProfile {
  /** Where the profile came from (a path, or a label); every error message names it. */
  source: string;
  defaultAction: SeccompActionName;
  defaultErrnoRet?: number;
  architectures: SeccompArchName[];
  syscalls: SeccompRule[];
}

const UNSUPPORTED_FIELD_HINTS: Record<string, string> = {
  includes: "docker's conditional rules are not supported; write the rules that apply",
  excludes: "docker's conditional rules are not supported; write the rules that apply",
  archMap: 'list the architectures in "architectures" instead',
  flags: 'the launcher loads filters without flags; remove it',
  listenerPath: 'brig runs no seccomp agent; remove it',
  listenerMetadata: 'brig runs no seccomp agent; remove it',
  name: 'use "names": ["..."]',
};

// The range checks come before int(): zod's int() also refuses unsafe integers, with a vaguer message.
const uint64Number = z
  .number({ error: 'must be a number' })
  .min(0, { error: 'must not be negative' })
  .max(Number.MAX_SAFE_INTEGER, {
    error: `must be at most ${Number.MAX_SAFE_INTEGER}: larger json numbers lose precision`,
  })
  .int({ error: 'must be an integer' });

const errnoRet = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be an integer' })
  .min(0, { error: 'must not be negative' })
  .max(MAX_ERRNO, { error: `must be at most ${MAX_ERRNO} (the kernel's MAX_ERRNO)` });

const action = z.enum(SECCOMP_ACTIONS, {
  error: (issue) =>
    issue.input === 'SCMP_ACT_NOTIFY'
      ? 'SCMP_ACT_NOTIFY is not supported: brig runs no seccomp agent'
      : `unknown action ${JSON.stringify(issue.input)}; use one of ${SECCOMP_ACTIONS.join(', ')}`,
});

const operator = z.enum(SECCOMP_OPERATORS as [SeccompOperator, ...SeccompOperator[]], {
  error: (issue) => `unknown operator ${JSON.stringify(issue.input)}; use one of ${SECCOMP_OPERATORS.join(', ')}`,
});

const ARCH_NAMES = Object.keys(SECCOMP_ARCHES) as [SeccompArchName, ...SeccompArchName[]];
const arch = z.enum(ARCH_NAMES, {
  error: (issue) => `unknown architecture ${JSON.stringify(issue.input)}; use one of ${ARCH_NAMES.join(', ')}`,
});

const syscallName = z
  .string({ error: 'must be a string' })
  .min(1, { error: 'syscall name must not be empty' })
  .regex(/^[a-z0-9_]+$/, { error: 'syscall names are lowercase letters, digits and _' });

const argSchema = z.strictObject({
  index: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .min(0, { error: 'must not be negative' })
    .max(MAX_SYSCALL_ARG_INDEX, { error: `must be at most ${MAX_SYSCALL_ARG_INDEX}: syscalls have six arguments` }),
  value: uint64Number,
  valueTwo: uint64Number.optional(),
  op: operator,
});

const ruleSchema = z.strictObject({
  names: z.array(syscallName, { error: 'must be an array of syscall names' }).min(1, { error: 'must not be empty' }),
  action,
  errnoRet: errnoRet.optional(),
  // Docker writes "args": null for rules without arguments.
  args: z.array(argSchema, { error: 'must be an array' }).nullable().optional(),
  comment: z.string({ error: 'must be a string' }).optional(),
});

const profileSchema = z.strictObject(
  {
    defaultAction: action,
    defaultErrnoRet: errnoRet.optional(),
    architectures: z.array(arch, { error: 'must be an array of SCMP_ARCH_* names' }).nullable().optional(),
    syscalls: z.array(ruleSchema, { error: 'must be an array of rules' }).nullable().optional(),
    comment: z.string({ error: 'must be a string' }).optional(),
    description: z.string({ error: 'must be a string' }).optional(),
  },
  { error: 'a seccomp profile must be a json object' },
);

type RawProfile = z.infer<typeof profileSchema>;

/** One validation problem, with the ConfigError code it maps to. */
interface Problem {
  code: string;
  path: (string | number)[];
  message: string;
}

/** Parses profile JSON text. `source` names the profile in error messages (usually its path). */
export function parseProfile(text: string, source: string): SeccompProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(text.startsWith('\uFEFF') ? text.slice(1) : text);
  } catch (cause) {
    const reason = cause instanceof Error ? lowerFirst(cause.message) : 'unparseable';
    throw new ConfigError('seccomp_profile_invalid_json', `seccomp profile ${source} is not valid json: ${reason}`, {
      cause,
    });
  }
  return validateProfile(raw, source);
}

/** Validates an already parsed profile object. */
export function validateProfile(raw: unknown, source: string): SeccompProfile {
  const result = profileSchema.safeParse(raw);
  if (!result.success) {
    // A misspelt or unsupported key explains the "missing field" issues it causes, so it goes first.
    const issues = [...result.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
    throw toConfigError(source, issueToProblem(issues[0]!), issues.length - 1);
  }
  const problems = checkRules(result.data);
  if (problems.length > 0) throw toConfigError(source, problems[0]!, problems.length - 1);
  return normalize(result.data, source);
}

/** Renders a zod path the way a reader finds it in the file: $.syscalls[3].args[0].op */
export function jsonPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${String(key)}`), '$');
}

function issueToProblem(issue: z.core.$ZodIssue): Problem {
  const path = issue.path.filter((key): key is string | number => typeof key !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const hint = UNSUPPORTED_FIELD_HINTS[key] ?? 'remove it or check its spelling';
    return { code: 'seccomp_unsupported_field', path: [...path, key], message: `unsupported field "${key}": ${hint}` };
  }
  return { code: codeForIssue(issue.code, path), path, message: lowerFirst(issue.message) };
}

/** Enum misses get their own codes: they are the common mistakes, and callers may match on them. */
function codeForIssue(issueCode: string, path: (string | number)[]): string {
  if (issueCode !== 'invalid_value') return 'seccomp_profile_invalid';
  const last = path.at(-1);
  if (last === 'action' || last === 'defaultAction') return 'seccomp_unknown_action';
  if (last === 'op') return 'seccomp_unknown_operator';
  if (path[0] === 'architectures') return 'seccomp_unknown_arch';
  return 'seccomp_profile_invalid';
}

/** Cross-field rules the schema cannot express. */
function checkRules(profile: RawProfile): Problem[] {
  const problems: Problem[] = [];
  if (profile.defaultErrnoRet !== undefined && !ACTIONS_WITH_ERRNO_RET.includes(profile.defaultAction)) {
    problems.push({
      code: 'seccomp_profile_invalid',
      path: ['defaultErrnoRet'],
      message: `defaultErrnoRet only applies when defaultAction is SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${profile.defaultAction}`,
    });
  }
  problems.push(...checkActErrno(profile.defaultAction, profile.defaultErrnoRet, ['defaultErrnoRet']));
  // name → where its rules are and whether one of them is unconditional
  const seen = new Map<string, { at: number; unconditional: boolean }>();
  (profile.syscalls ?? []).forEach((rule, ruleIndex) => {
    if (rule.errnoRet !== undefined && !ACTIONS_WITH_ERRNO_RET.includes(rule.action)) {
      problems.push({
        code: 'seccomp_profile_invalid',
        path: ['syscalls', ruleIndex, 'errnoRet'],
        message: `errnoRet only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not ${rule.action}`,
      });
    }
    problems.push(...checkActErrno(rule.action, rule.errnoRet, ['syscalls', ruleIndex, 'errnoRet']));
    const args = rule.args ?? [];
    const argIndexes = args.map((arg) => arg.index);
    argIndexes.forEach((index, position) => {
      if (argIndexes.indexOf(index) !== position) {
        problems.push({
          code: 'seccomp_profile_invalid',
          path: ['syscalls', ruleIndex, 'args', position, 'index'],
          message: `argument ${index} is compared twice in one rule; libseccomp cannot and them, split them into rules`,
        });
      }
    });
    rule.names.forEach((name, nameIndex) => {
      const path = ['syscalls', ruleIndex, 'names', nameIndex];
      const previous = seen.get(name);
      if (previous?.at === ruleIndex) {
        problems.push({ code: 'seccomp_duplicate_syscall', path, message: `syscall "${name}" is listed twice` });
      } else if (previous && (previous.unconditional || args.length === 0)) {
        problems.push({
          code: 'seccomp_duplicate_syscall',
          path,
          message:
            `syscall "${name}" already has a rule at syscalls[${previous.at}]; an unconditional rule ` +
            'cannot share a syscall with another rule (libseccomp keeps only one), merge them',
        });
      }
      seen.set(name, { at: ruleIndex, unconditional: (previous?.unconditional ?? false) || args.length === 0 });
    });
  });
  return problems;
}

/**
 * A profile the runtime runs programs under must let each of
 * LAUNCHER_SYSCALLS through whatever its arguments, or every sandbox would
 * fail before its program starts. Throws ConfigError
 * `seccomp_launcher_syscall_denied` naming the first that is not.
 */
export function assertLauncherSyscallsAllowed(profile: SeccompProfile): void {
  const problems: Problem[] = [];
  for (const name of LAUNCHER_SYSCALLS) {
    const ruleIndex = profile.syscalls.findIndex((rule) => rule.names.includes(name));
    const rule = profile.syscalls[ruleIndex];
    const allowed = rule
      ? ALLOWING_ACTIONS.includes(rule.action) && rule.args.length === 0
      : ALLOWING_ACTIONS.includes(profile.defaultAction);
    if (allowed) continue;
    problems.push({
      code: 'seccomp_launcher_syscall_denied',
      path: rule ? ['syscalls', ruleIndex, 'names', rule.names.indexOf(name)] : ['defaultAction'],
      message:
        `syscall "${name}" must be allowed whatever its arguments: the launcher calls ` +
        `${LAUNCHER_SYSCALLS.join(', ')} after loading the filter, on the way to the program's execve`,
    });
  }
  if (problems.length > 0) throw toConfigError(profile.source, problems[0]!, problems.length - 1);
}

function checkActErrno(action: SeccompActionName, errno: number | undefined, path: (string | number)[]): Problem[] {
  if (action !== 'SCMP_ACT_ERRNO' || errno === undefined || errno <= MAX_ACT_ERRNO) return [];
  return [
    {
      code: 'seccomp_profile_invalid',
      path,
      message: `must be at most ${MAX_ACT_ERRNO} with SCMP_ACT_ERRNO: libseccomp refuses ${MAX_ERRNO}`,
    },
  ];
}

function normalize(raw: RawProfile, source: string): SeccompProfile {
  return {
    source,
    defaultAction: raw.defaultAction,
    ...(raw.defaultErrnoRet === undefined ? {} : { defaultErrnoRet: raw.defaultErrnoRet }),
    architectures: [...new Set(raw.architectures ?? [])],
    syscalls: (raw.syscalls ?? []).map((rule) => ({
      names: rule.names,
      action: rule.action,
      ...(rule.errnoRet === undefined ? {} : { errnoRet: rule.errnoRet }),
      args: (rule.args ?? []).map((arg) => ({
        index: arg.index,
        value: arg.value,
        valueTwo: arg.valueTwo ?? 0,
        op: arg.op,
      })),
    })),
  };
}

function toConfigError(source: string, problem: Problem, otherCount: number): ConfigError {
  const field = jsonPath(problem.path);
  const more = otherCount > 0 ? ` (and ${otherCount} more problem${otherCount === 1 ? '' : 's'})` : '';
  return new ConfigError(problem.code, `seccomp profile ${source}: ${field}: ${problem.message}${more}`, { field });
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
