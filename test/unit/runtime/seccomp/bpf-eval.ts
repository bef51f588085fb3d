/**
 * A classic BPF interpreter for seccomp filters, for tests: it answers what
 * a compiled profile returns for a syscall with given arguments, so a policy
 * can be swept over thousands of argument combinations without a kernel.
 *
 * It runs the instructions libseccomp emits (loads from struct seccomp_data,
 * ALU on the accumulator, conditional and unconditional jumps, returns) and
 * throws on anything else, so a new instruction kind cannot pass unnoticed.
 * The kernel's own checks (seccomp_check_filter) are what it mirrors: no
 * backward jumps, loads only at 4-byte aligned offsets inside seccomp_data.
 */
import { SOCK_FILTER_BYTES } from '../../../../runtime/seccomp/compile.ts';

/** AUDIT_ARCH_X86_64 and AUDIT_ARCH_AARCH64 (linux/audit.h). */
export const AUDIT_ARCH = { x64: 0xc000003e, arm64: 0xc00000b7 } as const;

/** struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]. */
const SECCOMP_DATA_BYTES = 64;
const ARGS_OFFSET = 16;
const SYSCALL_ARG_COUNT = 6;
const WORD_BYTES = 4;
/** The kernel's scratch memory: BPF_MEMWORDS. */
const MEM_WORDS = 16;

// Instruction classes and fields (linux/bpf_common.h).
const BPF_CLASS = (code: number) => code & 0x07;
const BPF_LD = 0x00;
const BPF_LDX = 0x01;
const BPF_ST = 0x02;
const BPF_STX = 0x03;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_RET = 0x06;
const BPF_MISC = 0x07;
const BPF_MODE = (code: number) => code & 0xe0;
const BPF_ABS = 0x20;
const BPF_IMM = 0x00;
const BPF_MEM = 0x60;
const BPF_SRC = (code: number) => code & 0x08;
const BPF_X = 0x08;
const BPF_OP = (code: number) => code & 0xf0;
const BPF_JA = 0x00;
const BPF_JEQ = 0x10;
const BPF_JGT = 0x20;
const BPF_JGE = 0x30;
const BPF_JSET = 0x40;
const BPF_ADD = 0x00;
const BPF_SUB = 0x10;
const BPF_AND = 0x50;
const BPF_OR = 0x40;
const BPF_LSH = 0x60;
const BPF_RSH = 0x70;
const BPF_RVAL = (code: number) => code & 0x18;
const BPF_A = 0x10;
const BPF_K = 0x00;
const BPF_TAX = 0x00;
const BPF_TXA = 0x80;

export interface SeccompCall {
  nr: number;
  arch?: number;
  /** Up to six arguments as unsigned 64-bit values; missing ones are 0. */
  args?: readonly bigint[];
}

/** Runs `bpf` (an array of struct sock_filter) on one syscall and returns the 32-bit action word. */
export function evaluateFilter(bpf: Buffer, call: SeccompCall): number {
  const data = seccompData(call);
  const count = bpf.length / SOCK_FILTER_BYTES;
  const mem = new Uint32Array(MEM_WORDS);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < count; pc++) {
    const at = pc * SOCK_FILTER_BYTES;
    const code = bpf.readUInt16LE(at);
    const jt = bpf.readUInt8(at + 2);
    const jf = bpf.readUInt8(at + 3);
    const k = bpf.readUInt32LE(at + 4);
    switch (BPF_CLASS(code)) {
      case BPF_LD:
        if (BPF_MODE(code) === BPF_ABS) a = loadWord(data, k, pc);
        else if (BPF_MODE(code) === BPF_IMM) a = k;
        else if (BPF_MODE(code) === BPF_MEM) a = mem[memIndex(k, pc)]!;
        else throw unsupported(code, pc);
        break;
      case BPF_LDX:
        if (BPF_MODE(code) === BPF_IMM) x = k;
        else if (BPF_MODE(code) === BPF_MEM) x = mem[memIndex(k, pc)]!;
        else throw unsupported(code, pc);
        break;
      case BPF_ST:
        mem[memIndex(k, pc)] = a;
        break;
      case BPF_STX:
        mem[memIndex(k, pc)] = x;
        break;
      case BPF_ALU:
        a = alu(code, a, BPF_SRC(code) === BPF_X ? x : k, pc);
        break;
      case BPF_JMP: {
        const operand = BPF_SRC(code) === BPF_X ? x : k;
        let skip: number;
        switch (BPF_OP(code)) {
          case BPF_JA:
            skip = k;
            break;
          case BPF_JEQ:
            skip = a === operand ? jt : jf;
            break;
          case BPF_JGT:
            skip = a > operand ? jt : jf;
            break;
          case BPF_JGE:
            skip = a >= operand ? jt : jf;
            break;
          case BPF_JSET:
            skip = (a & operand) !== 0 ? jt : jf;
            break;
          default:
            throw unsupported(code, pc);
        }
        pc += skip;
        break;
      }
      case BPF_RET:
        if (BPF_RVAL(code) === BPF_K) return k;
        if (BPF_RVAL(code) === BPF_A) return a;
        throw unsupported(code, pc);
      case BPF_MISC:
        if (BPF_OP(code) === BPF_TAX) x = a;
        else if (BPF_OP(code) === BPF_TXA) a = x;
        else throw unsupported(code, pc);
        break;
      default:
        throw unsupported(code, pc);
    }
  }
  throw new Error('the filter ran off its end without a return');
}

function seccompData(call: SeccompCall): Buffer {
  const data = Buffer.alloc(SECCOMP_DATA_BYTES);
  data.writeInt32LE(call.nr, 0);
  data.writeUInt32LE(call.arch ?? AUDIT_ARCH.x64, 4);
  const args = call.args ?? [];
  if (args.length > SYSCALL_ARG_COUNT) throw new Error(`a syscall has at most ${SYSCALL_ARG_COUNT} arguments`);
  for (const [index, value] of args.entries()) data.writeBigUInt64LE(BigInt.asUintN(64, value), ARGS_OFFSET + 8 * index);
  return data;
}

function loadWord(data: Buffer, offset: number, pc: number): number {
  if (offset % WORD_BYTES !== 0 || offset + WORD_BYTES > data.length) {
    throw new Error(`instruction ${pc} loads from offset ${offset}, outside struct seccomp_data`);
  }
  return data.readUInt32LE(offset);
}

function memIndex(k: number, pc: number): number {
  if (k >= MEM_WORDS) throw new Error(`instruction ${pc} uses scratch word ${k}`);
  return k;
}

function alu(code: number, a: number, operand: number, pc: number): number {
  switch (BPF_OP(code)) {
    case BPF_ADD:
      return (a + operand) >>> 0;
    case BPF_SUB:
      return (a - operand) >>> 0;
    case BPF_AND:
      return (a & operand) >>> 0;
    case BPF_OR:
      return (a | operand) >>> 0;
    case BPF_LSH:
      return (a << operand) >>> 0;
    case BPF_RSH:
      return a >>> operand;
    default:
      throw unsupported(code, pc);
  }
}

function unsupported(code: number, pc: number): Error {
  return new Error(`instruction ${pc} has opcode 0x${code.toString(16)}, which this interpreter does not run`);
}
