/**
 * Compiles a seccomp profile into classic BPF with libseccomp, in the parent.
 * The launcher reads the bytes from an fd and loads them with
 * seccomp(SECCOMP_SET_MODE_FILTER) in the program's process while the sandbox
 * is prepared, a few calls before its execve: no JSON and no libseccomp in C,
 * and each profile is compiled once per process.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, readFileSync, readSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { basename, extname } from 'node:path';
import { ConfigError, HostError } from '../errors.ts';
import {
  type FilterContext,
  type LibSeccomp,
  libseccomp,
  MFD_CLOEXEC,
  NR_SCMP_ERROR,
  SCMP_ACT_ALLOW,
  SCMP_ACT_KILL_PROCESS,
  SCMP_ACT_KILL_THREAD,
  SCMP_ACT_LOG,
  SCMP_ACT_TRAP,
  SCMP_CMP,
  SCMP_FLTATR_ACT_BADARCH,
  SCMP_FLTATR_CTL_NNP,
  SCMP_FLTATR_CTL_OPTIMIZE,
  SCMP_OPTIMIZE_BINARY_TREE,
  type ScmpArgCmp,
  scmpActErrno,
  scmpActTrace,
} from './libseccomp.ts';
import {
  assertLauncherSyscallsAllowed,
  DEFAULT_ERRNO_RET,
  parseProfile,
  SECCOMP_ARCHES,
  type SeccompActionName,
  type SeccompProfile,
  type SeccompRule,
} from './profile.ts';

/** sizeof(struct sock_filter): u16 code, u8 jt, u8 jf, u32 k. */
export const SOCK_FILTER_BYTES = 8;
/** BPF_MAXINSNS: the kernel refuses longer classic BPF programs. */
export const BPF_MAX_INSTRUCTIONS = 4096;

export interface CompiledProfile {
  /** File name without extension, e.g. "default". */
  name: string;
  /** Hex sha256 of the file's bytes: the cache key, and a stable id for logs. */
  sha256: string;
  /** An array of struct sock_filter, exactly what seccomp_export_bpf() writes. Shared: do not mutate. */
  bpf: Buffer;
}

const compiledBySha256 = new Map<string, Buffer>();

/**
 * Reads, validates and compiles a profile file for the runtime to run programs
 * under; the same content is compiled once per process.
 */
export function loadAndCompile(path: string): CompiledProfile {
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(
      'seccomp_profile_unreadable',
      `cannot read seccomp profile ${path} (${reason}); check the profile path in the config`,
      { cause },
    );
  }
  const sha256 = createHash('sha256').update(content).digest('hex');
  const name = basename(path, extname(path));
  let bpf = compiledBySha256.get(sha256);
  if (bpf === undefined) {
    const profile = parseProfile(content.toString('utf8'), path);
    assertLauncherSyscallsAllowed(profile);
    bpf = compileProfile(profile);
    compiledBySha256.set(sha256, bpf);
  }
  return { name, sha256, bpf };
}

/** Forgets compiled profiles, so that the next loadAndCompile() compiles again. */
export function clearCompiledProfiles(): void {
  compiledBySha256.clear();
}

/** Compiles a validated profile to BPF bytes. Throws ConfigError for anything libseccomp refuses. */
export function compileProfile(profile: SeccompProfile): Buffer {
  const lib = libseccomp();
  const defaultAction = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const ctx = lib.seccomp_init(defaultAction);
  if (ctx === null || ctx === 0n) {
    throw new ConfigError(
      'seccomp_rule_rejected',
      `seccomp profile ${profile.source}: $.defaultAction: libseccomp rejected ${profile.defaultAction}; ` +
        'this kernel or libseccomp may not support it',
      { field: '$.defaultAction' },
    );
  }
  try {
    setAttributes(lib, ctx);
    const arches = nameArches(lib, profile);
    for (const [ruleIndex, rule] of profile.syscalls.entries()) addRule(lib, ctx, profile, rule, ruleIndex, arches, defaultAction);
    const bpf = exportBpf(lib, ctx);
    const instructionCount = bpf.length / SOCK_FILTER_BYTES;
    if (instructionCount > BPF_MAX_INSTRUCTIONS) {
      throw new ConfigError(
        'seccomp_filter_too_large',
        `seccomp profile ${profile.source} compiles to ${instructionCount} bpf instructions, ` +
          `over the kernel's limit of ${BPF_MAX_INSTRUCTIONS}; list fewer architectures or rules`,
      );
    }
    return bpf;
  } finally {
    lib.seccomp_release(ctx);
  }
}

function setAttributes(lib: LibSeccomp, ctx: FilterContext): void {
  // We only export: the launcher sets no_new_privs itself before it loads the filter.
  check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), 'seccomp_attr_set(SCMP_FLTATR_CTL_NNP)');
  // A syscall from an arch missing from the filter kills the whole process, not
  // only the calling thread (libseccomp's default), so the verdict is clear.
  check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), 'seccomp_attr_set(SCMP_FLTATR_ACT_BADARCH)');
  // The default layout is one linear chain ordered by priority: read and write
  // sat ~350 comparisons deep in the default profile, paid on every syscall.
  // A tree sorted by syscall number costs ~10, for ~25% more instructions.
  check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, SCMP_OPTIMIZE_BINARY_TREE), 'seccomp_attr_set(SCMP_FLTATR_CTL_OPTIMIZE)');
}

interface FilterArch {
  name: string;
  token: number;
}

/**
 * The filter covers the native arch only (libseccomp's context starts with
 * it): a syscall made through another ABI the kernel also executes (int 0x80,
 * x32, AArch32) kills the process (SCMP_FLTATR_ACT_BADARCH). Judges run native
 * programs, and a one-arch filter is a third of the size: measured here, the
 * kernel took ~3 ms per sandbox to load the three-arch filter, more than the
 * whole namespace setup. Profiles may still list other arches; their syscall
 * names are then accepted, so one profile serves x86_64 and aarch64 hosts.
 * Returns the arches whose names the profile may use.
 */
function nameArches(lib: LibSeccomp, profile: SeccompProfile): FilterArch[] {
  const nativeToken = lib.seccomp_arch_native();
  const knownArches = Object.values(SECCOMP_ARCHES)
    .map((name) => ({ name, token: lib.seccomp_arch_resolve_name(name) }))
    .filter((arch) => arch.token !== 0); // 0: this libseccomp does not know the arch
  const native = knownArches.find((arch) => arch.token === nativeToken) ?? { name: 'native', token: nativeToken };
  const listed: FilterArch[] = [];
  for (const archName of profile.architectures) {
    const arch = knownArches.find((known) => known.name === SECCOMP_ARCHES[archName]);
    if (arch && arch.token !== nativeToken) listed.push(arch);
  }
  return [native, ...listed];
}

function addRule(
  lib: LibSeccomp,
  ctx: FilterContext,
  profile: SeccompProfile,
  rule: SeccompRule,
  ruleIndex: number,
  arches: FilterArch[],
  defaultAction: number,
): void {
  const action = actionValue(rule.action, rule.errnoRet);
  const args: ScmpArgCmp[] = rule.args.map((arg) => ({
    arg: arg.index,
    op: SCMP_CMP[arg.op],
    datum_a: BigInt(arg.value),
    datum_b: BigInt(arg.valueTwo),
  }));
  rule.names.forEach((name, nameIndex) => {
    const field = `$.syscalls[${ruleIndex}].names[${nameIndex}]`;
    // Known means a real number on at least one arch of the filter; libseccomp
    // gives negative pseudo-numbers for names that exist only on other arches.
    const known = arches.some((arch) => lib.seccomp_syscall_resolve_name_arch(arch.token, name) >= 0);
    // The rule API takes the native number (or pseudo-number) and maps it per arch.
    const nativeNr = lib.seccomp_syscall_resolve_name(name);
    if (!known || nativeNr === NR_SCMP_ERROR) {
      throw new ConfigError(
        'seccomp_unknown_syscall',
        `seccomp profile ${profile.source}: ${field}: unknown syscall "${name}" on ` +
          `${arches.map((arch) => arch.name).join(', ')}; fix the name, or list the architecture that has it`,
        { field },
      );
    }
    // libseccomp refuses (EACCES) a rule that only repeats the default action; it changes nothing anyway.
    if (action === defaultAction) return;
    const rc = lib.seccomp_rule_add_array(ctx, action, nativeNr, args.length, args.length > 0 ? args : null);
    if (rc < 0) {
      const hint =
        rc === -osConstants.errno.EEXIST ? 'another rule matches the same arguments with a different action' : 'check its action and args';
      throw new ConfigError(
        'seccomp_rule_rejected',
        `seccomp profile ${profile.source}: $.syscalls[${ruleIndex}]: libseccomp rejected the rule for ` +
          `"${name}" (${errnoName(rc)}); ${hint}`,
        { field: `$.syscalls[${ruleIndex}]` },
      );
    }
  });
}

/** The 32-bit action word libseccomp wants for an OCI action name. */
function actionValue(action: SeccompActionName, errnoRet: number | undefined): number {
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return SCMP_ACT_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return SCMP_ACT_KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return SCMP_ACT_TRAP;
    case 'SCMP_ACT_ERRNO':
      return scmpActErrno(errnoRet ?? DEFAULT_ERRNO_RET);
    case 'SCMP_ACT_TRACE':
      return scmpActTrace(errnoRet ?? DEFAULT_ERRNO_RET);
    case 'SCMP_ACT_LOG':
      return SCMP_ACT_LOG;
    case 'SCMP_ACT_ALLOW':
      return SCMP_ACT_ALLOW;
  }
}

/** seccomp_export_bpf() only writes to an fd: give it a memfd and read the bytes back. */
function exportBpf(lib: LibSeccomp, ctx: FilterContext): Buffer {
  const fd = lib.memfd_create('brig-seccomp-bpf', MFD_CLOEXEC);
  if (fd < 0) {
    throw new HostError('seccomp_compile_failed', 'memfd_create failed; brig needs linux 3.17 or later');
  }
  try {
    const rc = lib.seccomp_export_bpf(ctx, fd);
    if (rc < 0) {
      throw new HostError('seccomp_compile_failed', `seccomp_export_bpf failed (${errnoName(rc)})`);
    }
    const sizeBytes = fstatSync(fd).size;
    if (sizeBytes === 0 || sizeBytes % SOCK_FILTER_BYTES !== 0) {
      throw new HostError(
        'seccomp_compile_failed',
        `seccomp_export_bpf wrote ${sizeBytes} bytes, not a whole number of ${SOCK_FILTER_BYTES}-byte instructions`,
      );
    }
    const bpf = Buffer.alloc(sizeBytes);
    let readBytes = 0;
    while (readBytes < sizeBytes) {
      const n = readSync(fd, bpf, readBytes, sizeBytes - readBytes, readBytes);
      if (n === 0) throw new HostError('seccomp_compile_failed', 'the exported seccomp filter was truncated');
      readBytes += n;
    }
    return bpf;
  } finally {
    closeSync(fd);
  }
}

/** libseccomp returns -errno; name it for messages. */
function errnoName(rc: number): string {
  const entry = Object.entries(osConstants.errno).find(([, value]) => value === -rc);
  return entry ? entry[0] : `error ${rc}`;
}

function check(rc: number, what: string): void {
  if (rc < 0) throw new HostError('seccomp_compile_failed', `${what} failed (${errnoName(rc)})`);
}
