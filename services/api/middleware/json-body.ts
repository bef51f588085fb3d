import type { Request, RequestHandler } from 'express';
import { decodeUtf8 } from '../../../runtime/utf8.ts';
import { ServiceError } from '../../shared/errors.ts';
import { asyncMiddleware } from '../routes/route.ts';
import { readBody } from './read-body.ts';

const UTF8_NAMES = new Set(['utf-8', 'utf8']);
const MAX_ECHOED_HEADER_CHARS = 64;

/** The charset parameter of Content-Type, lowercased, or undefined; split by hand, as a header is untrusted text. */
function charsetOf(contentType: string): string | undefined {
  for (const parameter of contentType.split(';').slice(1)) {
    const equals = parameter.indexOf('=');
    if (equals < 0 || parameter.slice(0, equals).trim().toLowerCase() !== 'charset') continue;
    return parameter
      .slice(equals + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
  }
  return undefined;
}

const JSON_SUFFIX = '+json';

/**
 * application/json, or any type/subtype+json (application/vnd.x+json), with
 * well-formed parameters (name=value each: `application/json;;;` is refused,
 * as a parser of RFC 7231 would).
 */
function isJsonMediaType(contentType: string): boolean {
  const [type = '', ...parameters] = contentType.split(';');
  if (parameters.some((parameter) => parameter.indexOf('=') <= 0 || parameter.trim().startsWith('='))) return false;
  const mediaType = type.trim().toLowerCase();
  const slash = mediaType.indexOf('/');
  if (slash <= 0) return false;
  const subtype = mediaType.slice(slash + 1);
  return (
    mediaType === 'application/json' || (subtype.length > JSON_SUFFIX.length && subtype.endsWith(JSON_SUFFIX) && !subtype.includes('/'))
  );
}

const requireJson: RequestHandler = (req, _res, next) => {
  const sent = req.get('content-type');
  if (sent === undefined || !isJsonMediaType(sent)) {
    throw new ServiceError(
      'content_type_unsupported',
      sent
        ? `content type ${JSON.stringify(sent.slice(0, MAX_ECHOED_HEADER_CHARS))} is not supported; send the body as application/json`
        : 'send a JSON body with Content-Type: application/json',
    );
  }
  const charset = charsetOf(sent ?? '');
  if (charset !== undefined && !UTF8_NAMES.has(charset)) {
    throw new ServiceError(
      'content_type_unsupported',
      `charset ${JSON.stringify(charset.slice(0, MAX_ECHOED_HEADER_CHARS))} is not supported; send the body as UTF-8`,
    );
  }
  next();
};

const BYTE_ORDER_MARK = '\ufeff';

function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) throw new ServiceError('body_invalid_json', 'the body is empty; send a JSON object');
  const text = decodeUtf8(bytes);
  if (text === null) throw new ServiceError('body_invalid_json', 'the body is not valid UTF-8; send JSON as UTF-8');
  try {
    // RFC 8259 lets a parser ignore a byte order mark; JSON.parse would not.
    return JSON.parse(text.startsWith(BYTE_ORDER_MARK) ? text.slice(BYTE_ORDER_MARK.length) : text);
  } catch (cause) {
    throw new ServiceError('body_invalid_json', `the body is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/**
 * A JSON body or nothing: another content type or charset is refused (415)
 * before a byte is read; the body is read by readBody (limits, encodings, and
 * what happens to a refused one), then decoded as UTF-8 and parsed. Any JSON
 * value passes here: that the body is an object is the route schema's
 * business, whose answer names the field.
 */
export function jsonBody(limitBytes: number): RequestHandler[] {
  const readJson = asyncMiddleware(async (req: Request, res) => {
    req.body = parseJson(await readBody(req, res, limitBytes));
  });
  return [requireJson, readJson];
}
