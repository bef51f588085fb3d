/**
 * The policy of profiles/seccomp/default.json, checked statically so that an
 * edit that opens an escape fails here even on hosts that cannot run the
 * enforcement probes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseProfile, type SeccompRule } from '../../../../runtime/seccomp/profile.ts';

const DEFAULT_PROFILE = fileURLToPath(new URL('../../../../profiles/seccomp/default.json', import.meta.url));
const profile = parseProfile(readFileSync(DEFAULT_PROFILE, 'utf8'), DEFAULT_PROFILE);

/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const ENOSYS = 38;
const EPERM = 1;
/** PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query value. */
const SAFE_PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];
const SAFE_SOCKET_FAMILIES = [1, 2, 10, 16]; // AF_UNIX, AF_INET, AF_INET6, AF_NETLINK

const MUST_DENY = [
  'unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root', 'chroot', 'ptrace', 'process_vm_readv',
  'process_vm_writev', 'bpf', 'keyctl', 'add_key', 'request_key', 'perf_event_open', 'userfaultfd',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'kexec_load', 'kexec_file_load', 'init_module',
  'finit_module', 'delete_module', 'reboot', 'swapon', 'swapoff', 'syslog', 'acct', 'settimeofday',
  'clock_settime', 'adjtimex', 'clock_adjtime', 'open_by_handle_at', 'name_to_handle_at', 'lookup_dcookie',
  'quotactl', 'nfsservctl', 'vhangup', 'iopl', 'ioperm', 'fsopen', 'fsconfig', 'fsmount', 'fspick',
  'move_mount', 'open_tree', 'mount_setattr',
];

function rulesFor(name: string): SeccompRule[] {
  return profile.syscalls.filter((rule) => rule.names.includes(name));
}

function isPermissive(rule: SeccompRule): boolean {
  return rule.action === 'SCMP_ACT_ALLOW' || rule.action === 'SCMP_ACT_LOG';
}

test('the default is an allowlist failing with EPERM', () => {
  assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(profile.defaultErrnoRet, EPERM);
});

test('no rule allows a syscall that must stay denied', () => {
  for (const name of MUST_DENY) {
    const allowing = rulesFor(name).filter(isPermissive);
    assert.deepEqual(allowing, [], `${name} must not be allowed`);
  }
});

test('clone is allowed only without namespace flags, and clone3 fails with ENOSYS', () => {
  const cloneRules = rulesFor('clone');
  assert.ok(cloneRules.length > 0);
  for (const rule of cloneRules.filter(isPermissive)) {
    assert.deepEqual(rule.args, [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
  }
  assert.deepEqual(rulesFor('clone3').map((rule) => [rule.action, rule.errnoRet]), [['SCMP_ACT_ERRNO', ENOSYS]]);
});

test('personality and socket are allowed only for listed argument values', () => {
  const checks: [string, number[]][] = [
    ['personality', SAFE_PERSONAS],
    ['socket', SAFE_SOCKET_FAMILIES],
  ];
  for (const [name, allowedValues] of checks) {
    const rules = rulesFor(name).filter(isPermissive);
    assert.ok(rules.length > 0, `${name} has allow rules`);
    for (const rule of rules) {
      assert.equal(rule.args.length, 1, `${name} allow rules check exactly one argument`);
      const [arg] = rule.args;
      assert.equal(arg!.index, 0);
      assert.equal(arg!.op, 'SCMP_CMP_EQ');
      assert.ok(allowedValues.includes(arg!.value), `${name}(${arg!.value}) must not be allowed`);
    }
  }
});
