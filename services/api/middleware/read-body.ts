import type { Transform } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { Request, Response } from 'express';
import { ServiceError } from '../../shared/errors.ts';

/** Content-Encoding → its decoder; identity (or none) reads the body as it is. */
const DECODERS = new Map<string, () => Transform>([
  ['gzip', createGunzip],
  ['x-gzip', createGunzip],
  ['deflate', createInflate],
]);
const IDENTITY = 'identity';
/** The test Node itself uses to route a request to 'checkContinue'. */
const EXPECT_CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;
const MAX_ECHOED_HEADER_CHARS = 64;

function tooLarge(limitBytes: number, what: string): ServiceError {
  return new ServiceError('body_too_large', `the body is over the limit of ${limitBytes} bytes${what}; send less`);
}

function decoderOf(req: Request): { decoder: Transform | null; encoding: string } {
  const encoding = (req.headers['content-encoding'] ?? IDENTITY).trim().toLowerCase();
  if (encoding === IDENTITY || encoding === '') return { decoder: null, encoding };
  const make = DECODERS.get(encoding);
  if (!make) {
    throw new ServiceError(
      'content_encoding_unsupported',
      `content encoding ${JSON.stringify(encoding.slice(0, MAX_ECHOED_HEADER_CHARS))} is not supported; send the body uncompressed, or as gzip or deflate`,
    );
  }
  return { decoder: make(), encoding };
}

/**
 * Reads a request body of at most limitBytes, both as sent and once
 * decompressed. A Content-Length over the limit is refused from the headers,
 * before a byte is read (and, with Expect: 100-continue, before the client is
 * told to send it). Past the limit, or on a body that is not the encoding it
 * claims, reading stops at once: the request is left paused and unread, and
 * the error handler answers with Connection: close rather than let Node drain
 * the rest of an upload to keep the connection alive.
 */
export function readBody(req: Request, res: Response, limitBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  // Node's parser has checked that it is digits only.
  if (declared !== undefined && Number(declared) > limitBytes)
    throw tooLarge(limitBytes, ` (Content-Length: ${declared.slice(0, MAX_ECHOED_HEADER_CHARS)})`);
  const { decoder, encoding } = decoderOf(req);
  if (EXPECT_CONTINUE.test(req.headers.expect ?? '')) res.writeContinue();

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let wireBytes = 0;
    let bodyBytes = 0;
    let settled = false;

    const onWireData = (chunk: Buffer) => {
      wireBytes += chunk.length;
      if (wireBytes > limitBytes) return fail(tooLarge(limitBytes, ''));
      if (decoder) decoder.write(chunk);
      else keep(chunk);
    };
    const keep = (chunk: Buffer) => {
      bodyBytes += chunk.length;
      if (bodyBytes > limitBytes) return fail(tooLarge(limitBytes, ' once decompressed'));
      chunks.push(chunk);
    };
    const onWireEnd = () => {
      if (decoder) decoder.end();
      else succeed();
    };
    const onDecoderError = () =>
      fail(
        new ServiceError(
          'body_invalid_encoding',
          `the body is not valid ${encoding} data, as its Content-Encoding says; send it uncompressed, or compressed whole`,
        ),
      );
    const onAborted = () => fail(new ServiceError('request_malformed', 'the request ended before its body was complete'));
    // 'close' also comes after a complete body, while a decoder may still be busy with it.
    const onClose = () => {
      if (!req.complete) onAborted();
    };

    const detach = () => {
      settled = true;
      req.off('data', onWireData).off('end', onWireEnd).off('error', onAborted).off('close', onClose);
      decoder?.off('data', keep).off('end', succeed);
    };
    function succeed(): void {
      if (settled) return;
      detach();
      resolve(Buffer.concat(chunks, bodyBytes));
    }
    function fail(error: ServiceError): void {
      if (settled) return;
      detach();
      req.pause();
      // The decoder may still emit an error of its own once destroyed: it has nowhere to go.
      decoder?.on('error', () => {}).destroy();
      chunks.length = 0;
      reject(error);
    }

    req.on('data', onWireData).on('end', onWireEnd).on('error', onAborted).on('close', onClose);
    decoder?.on('data', keep).on('end', succeed).on('error', onDecoderError);
  });
}
