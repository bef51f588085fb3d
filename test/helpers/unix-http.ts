/**
 * HTTP over a Unix socket: how a test reaches a service on a simulated
 * machine, through the forwarder that runs on the client's machine
 * (test/helpers/netns-forwarder.mjs).
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface UnixResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
}

export interface ServerSentEvent {
  type: string;
  data: any;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function unixRequest(
  socketPath: string,
  opts: { method: string; path: string; headers?: Record<string, string>; body?: unknown; timeoutMs?: number },
): Promise<UnixResponse> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        socketPath,
        method: opts.method,
        path: opts.path,
        agent: false,
        timeout: opts.timeoutMs ?? 10_000,
        headers: body === undefined ? opts.headers : { 'content-type': 'application/json', ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parseJson(text) });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method} ${opts.path}: no answer within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Follows a Server-Sent Events stream until the server ends it (or
 * timeoutMs pass: then it rejects), and returns every event in order.
 */
export function followEvents(
  socketPath: string,
  opts: { path: string; headers?: Record<string, string>; timeoutMs: number },
): Promise<ServerSentEvent[]> {
  return new Promise((resolve, reject) => {
    const events: ServerSentEvent[] = [];
    let buffer = '';
    const timer = setTimeout(
      () => req.destroy(new Error(`${opts.path}: the stream did not end within ${opts.timeoutMs} ms: ${JSON.stringify(events)}`)),
      opts.timeoutMs,
    );
    const req = httpRequest({ socketPath, method: 'GET', path: opts.path, agent: false, headers: opts.headers }, (res) => {
      if (res.statusCode !== 200) {
        clearTimeout(timer);
        res.resume();
        reject(new Error(`${opts.path}: status ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = [...block.matchAll(/^data: ?(.*)$/gm)].map((m) => m[1]).join('\n');
          if (type) events.push({ type, data: parseJson(data) });
        }
      });
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        resolve(events);
      });
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end();
  });
}
