/**
 * A small JSON Schema (2020-12) validator for the keywords the API's
 * document uses, written independently of zod so that a test can check the
 * served document against the validator instead of against itself. It
 * throws on a keyword it does not know, so a new keyword cannot slip by
 * unchecked.
 */
type Schema = Record<string, unknown> | boolean;

const ANNOTATIONS = new Set([
  'description',
  'default',
  'title',
  'examples',
  'format',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$comment',
  'id',
]);

export function validate(schema: Schema, value: unknown, root: Record<string, unknown>): boolean {
  if (schema === true) return true;
  if (schema === false) return false;
  for (const [keyword, arg] of Object.entries(schema)) {
    if (!check(keyword, arg, schema, value, root)) return false;
  }
  return true;
}

function resolve(ref: string, root: Record<string, unknown>): Schema {
  if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
  return ref
    .slice(2)
    .split('/')
    .reduce<unknown>((node, part) => (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')], root) as Schema;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function isType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

function check(keyword: string, arg: unknown, schema: Record<string, unknown>, value: unknown, root: Record<string, unknown>): boolean {
  const obj = value as Record<string, unknown>;
  switch (keyword) {
    case '$ref':
      return validate(resolve(arg as string, root), value, root);
    case 'type':
      return (Array.isArray(arg) ? arg : [arg]).some((t) => isType(value, t as string));
    case 'enum':
      return (arg as unknown[]).some((v) => JSON.stringify(v) === JSON.stringify(value));
    case 'const':
      return JSON.stringify(arg) === JSON.stringify(value);
    case 'properties':
      if (typeOf(value) !== 'object') return true;
      return Object.entries(arg as Record<string, Schema>).every(([name, sub]) => !(name in obj) || validate(sub, obj[name], root));
    case 'required':
      if (typeOf(value) !== 'object') return true;
      return (arg as string[]).every((name) => name in obj);
    case 'additionalProperties': {
      if (typeOf(value) !== 'object') return true;
      const known = Object.keys((schema.properties as Record<string, unknown>) ?? {});
      return Object.keys(obj)
        .filter((k) => !known.includes(k))
        .every((k) => validate(arg as Schema, obj[k], root));
    }
    case 'items':
      return !Array.isArray(value) || value.every((item) => validate(arg as Schema, item, root));
    case 'minItems':
      return !Array.isArray(value) || value.length >= (arg as number);
    case 'maxItems':
      return !Array.isArray(value) || value.length <= (arg as number);
    case 'minLength':
      return typeof value !== 'string' || [...value].length >= (arg as number);
    case 'maxLength':
      return typeof value !== 'string' || [...value].length <= (arg as number);
    case 'pattern':
      return typeof value !== 'string' || new RegExp(arg as string, 'u').test(value);
    case 'minimum':
      return typeof value !== 'number' || value >= (arg as number);
    case 'maximum':
      return typeof value !== 'number' || value <= (arg as number);
    case 'exclusiveMinimum':
      return typeof value !== 'number' || value > (arg as number);
    case 'exclusiveMaximum':
      return typeof value !== 'number' || value < (arg as number);
    case 'anyOf':
      return (arg as Schema[]).some((s) => validate(s, value, root));
    case 'allOf':
      return (arg as Schema[]).every((s) => validate(s, value, root));
    case 'oneOf':
      return (arg as Schema[]).filter((s) => validate(s, value, root)).length === 1;
    case 'not':
      return !validate(arg as Schema, value, root);
    case 'if': {
      const branch = validate(arg as Schema, value, root) ? schema.then : schema.else;
      return branch === undefined || validate(branch as Schema, value, root);
    }
    case 'then':
    case 'else':
      return true; // handled with 'if'
    default:
      if (ANNOTATIONS.has(keyword)) return true;
      throw new Error(`the test validator does not know the keyword ${keyword}`);
  }
}
