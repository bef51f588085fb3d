/**
 * koffi bindings to the host's libseccomp (and the one libc call the export
 * needs). Nothing here decides policy: compile.ts drives these calls.
 *
 * The library is loaded on first use, not on import, so modules that only
 * parse profiles (or hosts that never compile one) do not need libseccomp.
 * There is no libseccomp-dev on the host, so the constants below are copied
 * from libseccomp 2.5's seccomp.h and the kernel's uapi headers.
 */
import koffi, { type LibraryHandle } from 'koffi';
import { HostError } from '../errors.ts';
import { libcLibrary } from '../system/libc.ts';

export const LIBSECCOMP_SONAME = 'libseccomp.so.2';

/** Filter actions (seccomp.h). Values must match the kernel's SECCOMP_RET_*. */
export const SCMP_ACT_KILL_PROCESS = 0x80000000;
export const SCMP_ACT_KILL_THREAD = 0x00000000;
export const SCMP_ACT_TRAP = 0x00030000;
const SCMP_ACT_ERRNO_BASE = 0x00050000;
const SCMP_ACT_TRACE_BASE = 0x7ff00000;
export const SCMP_ACT_LOG = 0x7ffc0000;
export const SCMP_ACT_ALLOW = 0x7fff0000;
/** The low 16 bits of an action carry its data (an errno, a tracer message). */
const SCMP_ACT_DATA_MASK = 0x0000ffff;

/** SCMP_ACT_ERRNO(x): the syscall fails with -x and is not executed. */
export function scmpActErrno(errno: number): number {
  return (SCMP_ACT_ERRNO_BASE | (errno & SCMP_ACT_DATA_MASK)) >>> 0;
}

/** SCMP_ACT_TRACE(x): a ptrace tracer is notified with x (ENOSYS when there is none). */
export function scmpActTrace(message: number): number {
  return (SCMP_ACT_TRACE_BASE | (message & SCMP_ACT_DATA_MASK)) >>> 0;
}

/** enum scmp_compare. */
export const SCMP_CMP = {
  SCMP_CMP_NE: 1,
  SCMP_CMP_LT: 2,
  SCMP_CMP_LE: 3,
  SCMP_CMP_EQ: 4,
  SCMP_CMP_GE: 5,
  SCMP_CMP_GT: 6,
  SCMP_CMP_MASKED_EQ: 7,
} as const;

/** enum scmp_filter_attr (only the members compile.ts sets). */
export const SCMP_FLTATR_ACT_BADARCH = 2;
export const SCMP_FLTATR_CTL_NNP = 3;
export const SCMP_FLTATR_CTL_OPTIMIZE = 8;
/** SCMP_FLTATR_CTL_OPTIMIZE level 2: a binary tree sorted by syscall number. */
export const SCMP_OPTIMIZE_BINARY_TREE = 2;

/** What the resolve functions return for a name they do not know (__NR_SCMP_ERROR). */
export const NR_SCMP_ERROR = -1;

/** memfd_create flag (linux/memfd.h): the export fd must not leak into children. */
export const MFD_CLOEXEC = 0x0001;

/** libseccomp's scmp_filter_ctx: an opaque pointer, a BigInt under koffi 3. */
export type FilterContext = bigint;

/** struct scmp_arg_cmp: datum_a/datum_b are uint64, hence BigInt. */
export interface ScmpArgCmp {
  arg: number;
  op: number;
  datum_a: bigint;
  datum_b: bigint;
}

/** The libseccomp 2.5 calls Brig uses, with their C names so the man pages apply. */
export interface LibSeccomp {
  seccomp_init(defaultAction: number): FilterContext | null;
  seccomp_release(ctx: FilterContext): void;
  seccomp_attr_set(ctx: FilterContext, attr: number, value: number): number;
  seccomp_arch_native(): number;
  seccomp_arch_resolve_name(archName: string): number;
  seccomp_syscall_resolve_name(name: string): number;
  seccomp_syscall_resolve_name_arch(archToken: number, name: string): number;
  seccomp_rule_add_array(ctx: FilterContext, action: number, syscallNr: number, argCount: number, args: ScmpArgCmp[] | null): number;
  seccomp_export_bpf(ctx: FilterContext, fd: number): number;
  /** From libc: an anonymous file for seccomp_export_bpf to write into. */
  memfd_create(name: string, flags: number): number;
}

let loaded: LibSeccomp | undefined;

/** The bindings, loading libseccomp on the first call. Throws HostError if it is missing. */
export function libseccomp(): LibSeccomp {
  loaded ??= bind();
  return loaded;
}

function bind(): LibSeccomp {
  const lib = loadLibrary(
    LIBSECCOMP_SONAME,
    'libseccomp_missing',
    `cannot load ${LIBSECCOMP_SONAME}: install the debian package libseccomp2 (apt-get install libseccomp2)`,
  );
  const libc = libcLibrary();

  // Anonymous so that a second instance of this module cannot collide on a type name.
  const argCmp = koffi.struct({ arg: 'uint', op: 'uint', datum_a: 'uint64_t', datum_b: 'uint64_t' });
  const ctx = 'void *';
  return {
    seccomp_init: lib.func('seccomp_init', ctx, ['uint32_t']),
    seccomp_release: lib.func('seccomp_release', 'void', [ctx]),
    seccomp_attr_set: lib.func('seccomp_attr_set', 'int', [ctx, 'uint', 'uint32_t']),
    seccomp_arch_native: lib.func('seccomp_arch_native', 'uint32_t', []),
    seccomp_arch_resolve_name: lib.func('seccomp_arch_resolve_name', 'uint32_t', ['const char *']),
    seccomp_syscall_resolve_name: lib.func('seccomp_syscall_resolve_name', 'int', ['const char *']),
    seccomp_syscall_resolve_name_arch: lib.func('seccomp_syscall_resolve_name_arch', 'int', ['uint32_t', 'const char *']),
    seccomp_rule_add_array: lib.func('seccomp_rule_add_array', 'int', [ctx, 'uint32_t', 'int', 'uint', koffi.pointer(argCmp)]),
    seccomp_export_bpf: lib.func('seccomp_export_bpf', 'int', [ctx, 'int']),
    memfd_create: libc.func('memfd_create', 'int', ['const char *', 'uint']),
  };
}

function loadLibrary(soname: string, code: string, message: string): LibraryHandle {
  try {
    return koffi.load(soname);
  } catch (cause) {
    throw new HostError(code, message, { cause });
  }
}
