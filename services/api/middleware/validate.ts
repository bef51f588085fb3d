import type { z } from 'zod';
import { isErrorCode, ServiceError } from '../../shared/errors.ts';

/**
 * Runs a zod schema over request input and turns the first issue into an
 * API error: the code (request_invalid, or the one a custom check carries),
 * the field as a JSON path (files[2].name), and a message that says what is
 * expected. Schema-level messages win; the rest are written here.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input, { error: describeIssue, reportInput: true });
  if (result.success) return result.data;
  throw issueError(result.error.issues[0]!);
}

/** `['files', 2, 'name']` → `files[2].name`. */
export function jsonPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

function issueError(issue: z.core.$ZodIssue): ServiceError {
  let path = issue.path;
  if (issue.code === 'unrecognized_keys') path = [...path, issue.keys[0]!];
  const field = jsonPath(path);
  const params = issue.code === 'custom' ? (issue.params as { code?: unknown } | undefined) : undefined;
  const code = isErrorCode(params?.code) ? params.code : 'request_invalid';
  return new ServiceError(code, `${field || 'the body'}: ${issue.message}`, field ? { field } : undefined);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' && !Number.isInteger(value)) return 'a fraction';
  return `${/^[aeiou]/.test(typeof value) ? 'an' : 'a'} ${typeof value}`;
}

const EXPECTED: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  array: 'an array',
  object: 'an object',
  boolean: 'true or false',
};

function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, not ${typeName(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return 'must not be empty';
      if (issue.origin === 'array') return `must have at least ${issue.minimum} item${Number(issue.minimum) === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return `must be at least ${issue.minimum} characters long`;
      return issue.inclusive ? `must be at least ${issue.minimum}` : `must be greater than ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${issue.maximum} items`;
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters long`;
      return issue.inclusive ? `must be at most ${issue.maximum}` : `must be less than ${issue.maximum}`;
    case 'invalid_value':
      return `must be ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`}`;
    case 'unrecognized_keys':
      return 'is not a known field';
    case 'invalid_format':
      return `must be a valid ${issue.format}`;
    default:
      return undefined;
  }
}
