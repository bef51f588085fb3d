/**
 * The policy of profiles/seccomp/default.json, checked statically so that an
 * edit that opens an escape fails here even on hosts that cannot run the
 * enforcement probes.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
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
const AF_UNIX = 1;
const EAFNOSUPPORT = 97;
/** SCHED_OTHER, SCHED_BATCH, SCHED_IDLE: the policies without realtime priority. */
const NON_REALTIME_POLICIES = [0, 3, 5];
/** ~SCHED_RESET_ON_FORK on the 32-bit policy. */
const POLICY_WITHOUT_RESET_ON_FORK = 0xbfffffff;

const MUST_DENY = [
  'unshare',
  'setns',
  'mount',
  'umount',
  'umount2',
  'pivot_root',
  'chroot',
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'process_madvise',
  'process_mrelease',
  'pidfd_getfd',
  'kcmp',
  'bpf',
  'keyctl',
  'add_key',
  'request_key',
  'perf_event_open',
  'userfaultfd',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  'reboot',
  'swapon',
  'swapoff',
  'syslog',
  'acct',
  'settimeofday',
  'clock_settime',
  'adjtimex',
  'clock_adjtime',
  'open_by_handle_at',
  'name_to_handle_at',
  'lookup_dcookie',
  'quotactl',
  'quotactl_fd',
  'nfsservctl',
  'vhangup',
  'iopl',
  'ioperm',
  'modify_ldt',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'move_mount',
  'open_tree',
  'mount_setattr',
  'fanotify_init',
  'fanotify_mark',
  'memfd_secret',
  'sethostname',
  'setdomainname',
  'sync',
  'syncfs',
  'mbind',
  'set_mempolicy',
  'get_mempolicy',
  'set_mempolicy_home_node',
  'migrate_pages',
  'move_pages',
  'sched_setattr',
  'cachestat',
  'uselib',
  'ustat',
  'sysfs',
  '_sysctl',
  'remap_file_pages',
];
/** Kernel aio: refused as if the kernel had no CONFIG_AIO. */
const MUST_FAIL_WITH_ENOSYS = [
  'io_setup',
  'io_destroy',
  'io_submit',
  'io_cancel',
  'io_getevents',
  'io_pgetevents',
  'io_pgetevents_time64',
  'clone3',
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
  assert.deepEqual(
    rulesFor('clone3').map((rule) => [rule.action, rule.errnoRet]),
    [['SCMP_ACT_ERRNO', ENOSYS]],
  );
});

test('kernel aio and clone3 fail with ENOSYS and nothing allows them', () => {
  for (const name of MUST_FAIL_WITH_ENOSYS) {
    assert.deepEqual(
      rulesFor(name).map((rule) => [rule.action, rule.errnoRet]),
      [['SCMP_ACT_ERRNO', ENOSYS]],
      name,
    );
  }
});

test('personality is allowed only for listed argument values', () => {
  const rules = rulesFor('personality').filter(isPermissive);
  assert.ok(rules.length > 0, 'personality has allow rules');
  for (const rule of rules) {
    assert.equal(rule.args.length, 1, 'personality allow rules check exactly one argument');
    const [arg] = rule.args;
    assert.equal(arg!.index, 0);
    assert.equal(arg!.op, 'SCMP_CMP_EQ');
    assert.ok(SAFE_PERSONAS.includes(arg!.value), `personality(${arg!.value}) must not be allowed`);
  }
});

test('socket allow rules name a safe family exactly; every other socket rule fails with EAFNOSUPPORT', () => {
  const rules = rulesFor('socket');
  for (const rule of rules.filter(isPermissive)) {
    const family = rule.args.find((arg) => arg.index === 0);
    assert.ok(
      family?.op === 'SCMP_CMP_EQ' && SAFE_SOCKET_FAMILIES.includes(family.value),
      `socket rule allows more than a safe family: ${JSON.stringify(rule)}`,
    );
    if (family.value !== AF_UNIX) {
      assert.ok(
        rule.args.some((arg) => arg.index === 2 && arg.op === 'SCMP_CMP_EQ'),
        `socket(${family.value}) is allowed without naming its protocol`,
      );
    }
  }
  for (const rule of rules.filter((rule) => !isPermissive(rule))) {
    assert.deepEqual([rule.action, rule.errnoRet], ['SCMP_ACT_ERRNO', EAFNOSUPPORT], JSON.stringify(rule));
  }
});

test('socketpair is allowed for AF_UNIX only; other families fail with EAFNOSUPPORT', () => {
  const rules = rulesFor('socketpair');
  assert.deepEqual(
    rules.filter(isPermissive).map((rule) => rule.args),
    [[{ index: 0, value: AF_UNIX, valueTwo: 0, op: 'SCMP_CMP_EQ' }]],
  );
  for (const rule of rules.filter((rule) => !isPermissive(rule))) {
    assert.deepEqual([rule.action, rule.errnoRet], ['SCMP_ACT_ERRNO', EAFNOSUPPORT], JSON.stringify(rule));
  }
});

test('sched_setscheduler is allowed only for the non-realtime policies', () => {
  const rules = rulesFor('sched_setscheduler');
  assert.ok(rules.length > 0);
  for (const rule of rules) {
    assert.equal(rule.action, 'SCMP_ACT_ALLOW');
    assert.equal(rule.args.length, 1);
    const [arg] = rule.args;
    assert.deepEqual([arg!.index, arg!.op, arg!.value], [1, 'SCMP_CMP_MASKED_EQ', POLICY_WITHOUT_RESET_ON_FORK]);
    assert.ok(NON_REALTIME_POLICIES.includes(arg!.valueTwo), `sched_setscheduler policy ${arg!.valueTwo} must not be allowed`);
  }
});
