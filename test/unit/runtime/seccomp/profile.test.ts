import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../../runtime/errors.ts';
import { jsonPath, parseProfile, validateProfile } from '../../../../runtime/seccomp/profile.ts';

const SOURCE = 'profiles/seccomp/under-test.json';

/** Asserts a ConfigError with this code whose message names the source and every fragment. */
function assertConfigError(run: () => unknown, code: string, ...fragments: string[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(SOURCE), `message does not name the file: ${error.message}`);
    for (const fragment of fragments) {
      assert.ok(error.message.includes(fragment), `message lacks ${JSON.stringify(fragment)}: ${error.message}`);
    }
    assert.equal(error.message.charAt(0), error.message.charAt(0).toLowerCase(), 'messages are lowercase');
    return true;
  });
}

function profileWith(rule: Record<string, unknown>): Record<string, unknown> {
  return { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [rule] };
}

test('a valid profile is normalized: args default valueTwo 0, null args become [], arches deduplicated', () => {
  const profile = validateProfile(
    {
      description: 'accepted and ignored',
      comment: 'also ignored',
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: [
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: null, comment: 'ignored' },
        {
          names: ['clone'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }],
        },
        { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      ],
    },
    SOURCE,
  );
  assert.deepEqual(profile, {
    source: SOURCE,
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [] },
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, args: [] },
    ],
  });
});

test('malformed json is seccomp_profile_invalid_json naming the file', () => {
  assertConfigError(() => parseProfile('{"defaultAction": ', SOURCE), 'seccomp_profile_invalid_json', 'not valid json');
});

test('a leading byte order mark is tolerated', () => {
  assert.equal(parseProfile('\uFEFF{"defaultAction":"SCMP_ACT_ALLOW"}', SOURCE).defaultAction, 'SCMP_ACT_ALLOW');
});

test('an unknown action is seccomp_unknown_action with its json path', () => {
  assertConfigError(
    () => validateProfile(profileWith({ names: ['read'], action: 'SCMP_ACT_FOO' }), SOURCE),
    'seccomp_unknown_action',
    '$.syscalls[0].action',
    '"SCMP_ACT_FOO"',
  );
  assertConfigError(() => validateProfile({ defaultAction: 'ALLOW' }, SOURCE), 'seccomp_unknown_action', '$.defaultAction');
});

test('SCMP_ACT_NOTIFY is refused with the reason', () => {
  assertConfigError(() => validateProfile({ defaultAction: 'SCMP_ACT_NOTIFY' }, SOURCE), 'seccomp_unknown_action', 'no seccomp agent');
});

test('an unknown operator is seccomp_unknown_operator with its json path', () => {
  const rule = { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_XOR' }] };
  assertConfigError(
    () => validateProfile(profileWith(rule), SOURCE),
    'seccomp_unknown_operator',
    '$.syscalls[0].args[0].op',
    '"SCMP_CMP_XOR"',
  );
});

test('an unknown architecture is seccomp_unknown_arch', () => {
  assertConfigError(
    () => validateProfile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_Z80'] }, SOURCE),
    'seccomp_unknown_arch',
    '$.architectures[0]',
  );
});

test('wrong types are seccomp_profile_invalid with the json path in message and field', () => {
  assert.throws(
    () => validateProfile(profileWith({ names: 'read', action: 'SCMP_ACT_ALLOW' }), SOURCE),
    (error: unknown) => error instanceof ConfigError && error.code === 'seccomp_profile_invalid' && error.field === '$.syscalls[0].names',
  );
  assertConfigError(() => validateProfile([], SOURCE), 'seccomp_profile_invalid', 'json object');
  assertConfigError(
    () => {
      const args = [{ index: '0', value: 1, op: 'SCMP_CMP_EQ' }];
      return validateProfile(profileWith({ names: ['read'], action: 'SCMP_ACT_ALLOW', args }), SOURCE);
    },
    'seccomp_profile_invalid',
    '$.syscalls[0].args[0].index',
    'must be a number',
  );
});

test('empty names, empty and malformed syscall names are refused', () => {
  assertConfigError(
    () => validateProfile(profileWith({ names: [], action: 'SCMP_ACT_ALLOW' }), SOURCE),
    'seccomp_profile_invalid',
    '$.syscalls[0].names',
    'must not be empty',
  );
  assertConfigError(
    () => validateProfile(profileWith({ names: ['read', ''], action: 'SCMP_ACT_ALLOW' }), SOURCE),
    'seccomp_profile_invalid',
    '$.syscalls[0].names[1]',
    'must not be empty',
  );
  assertConfigError(
    () => validateProfile(profileWith({ names: ['Read'], action: 'SCMP_ACT_ALLOW' }), SOURCE),
    'seccomp_profile_invalid',
    '$.syscalls[0].names[0]',
  );
});

test('a name listed twice in one rule is seccomp_duplicate_syscall', () => {
  assertConfigError(
    () => validateProfile(profileWith({ names: ['read', 'write', 'read'], action: 'SCMP_ACT_ALLOW' }), SOURCE),
    'seccomp_duplicate_syscall',
    '$.syscalls[0].names[2]',
    '"read" is listed twice',
  );
});

test('an unconditional rule cannot share its syscall with another rule; conditional rules can', () => {
  const conditional = {
    names: ['personality'],
    action: 'SCMP_ACT_ALLOW',
    args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }],
  };
  const alsoConditional = { ...conditional, args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] };
  validateProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [conditional, alsoConditional] }, SOURCE);
  const unconditional = { names: ['personality'], action: 'SCMP_ACT_KILL_PROCESS' };
  assertConfigError(
    () => validateProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [conditional, unconditional] }, SOURCE),
    'seccomp_duplicate_syscall',
    '$.syscalls[1].names[0]',
    'syscalls[0]',
  );
  assertConfigError(
    () => validateProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [unconditional, conditional] }, SOURCE),
    'seccomp_duplicate_syscall',
    '$.syscalls[1].names[0]',
  );
});

test('an argument index over 5 is refused', () => {
  const rule = { names: ['mmap'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] };
  assertConfigError(
    () => validateProfile(profileWith(rule), SOURCE),
    'seccomp_profile_invalid',
    '$.syscalls[0].args[0].index',
    'at most 5',
  );
});

test('two comparisons on one argument in a rule are refused (libseccomp 2.5 cannot and them)', () => {
  const args = [
    { index: 1, value: 1, op: 'SCMP_CMP_GE' },
    { index: 1, value: 9, op: 'SCMP_CMP_LE' },
  ];
  assertConfigError(
    () => validateProfile(profileWith({ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args }), SOURCE),
    'seccomp_profile_invalid',
    '$.syscalls[0].args[1].index',
    'compared twice',
  );
});

test('values json cannot carry exactly are refused', () => {
  const rule = { names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] };
  assertConfigError(() => validateProfile(profileWith(rule), SOURCE), 'seccomp_profile_invalid', 'lose precision');
  const negative = { ...rule, args: [{ index: 1, value: -1, op: 'SCMP_CMP_EQ' }] };
  assertConfigError(() => validateProfile(profileWith(negative), SOURCE), 'seccomp_profile_invalid', 'negative');
});

test('errnoRet is only accepted where the action carries it, and capped at MAX_ERRNO', () => {
  assertConfigError(
    () => validateProfile(profileWith({ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }), SOURCE),
    'seccomp_profile_invalid',
    '$.syscalls[0].errnoRet',
  );
  assertConfigError(
    () => validateProfile({ defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, SOURCE),
    'seccomp_profile_invalid',
    '$.defaultErrnoRet',
  );
  assertConfigError(
    () => validateProfile(profileWith({ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 70000 }), SOURCE),
    'seccomp_profile_invalid',
    'at most 4095',
  );
});

test('SCMP_ACT_ERRNO takes at most 4094: libseccomp refuses MAX_ERRNO there, though SCMP_ACT_TRACE takes it', () => {
  assertConfigError(
    () => validateProfile(profileWith({ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 4095 }), SOURCE),
    'seccomp_profile_invalid',
    '$.syscalls[0].errnoRet',
    'at most 4094',
  );
  assertConfigError(
    () => validateProfile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 4095 }, SOURCE),
    'seccomp_profile_invalid',
    '$.defaultErrnoRet',
    'at most 4094',
  );
  assert.equal(
    validateProfile(profileWith({ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 4094 }), SOURCE).syscalls[0]!.errnoRet,
    4094,
  );
  assert.equal(
    validateProfile(profileWith({ names: ['read'], action: 'SCMP_ACT_TRACE', errnoRet: 4095 }), SOURCE).syscalls[0]!.errnoRet,
    4095,
  );
});

test("docker's includes/excludes and other unsupported fields are refused, saying why", () => {
  assertConfigError(
    () => {
      const rule = { names: ['read'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } };
      return validateProfile(profileWith(rule), SOURCE);
    },
    'seccomp_unsupported_field',
    '$.syscalls[0].includes',
    'conditional rules are not supported',
  );
  assertConfigError(
    () => validateProfile({ defaultAction: 'SCMP_ACT_ALLOW', archMap: [] }, SOURCE),
    'seccomp_unsupported_field',
    '$.archMap',
  );
  assertConfigError(
    () => validateProfile(profileWith({ name: 'read', action: 'SCMP_ACT_ALLOW' }), SOURCE),
    'seccomp_unsupported_field',
    'use "names"',
  );
});

test('jsonPath renders keys and indexes the way the file reads', () => {
  assert.equal(jsonPath([]), '$');
  assert.equal(jsonPath(['syscalls', 3, 'args', 0, 'op']), '$.syscalls[3].args[0].op');
});
