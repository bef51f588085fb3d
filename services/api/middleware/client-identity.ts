import { isIPv4, isIPv6 } from 'node:net';
import type { Request, Response } from 'express';
import { locals } from '../context.ts';

/**
 * Who a request counts against, for the rate limit and the cap on active
 * runs: its API key (as a digest prefix, set by requireApiKey), or else its
 * address. An IPv6 client gets a whole /64 (one host usually holds one, and
 * could otherwise rotate through 2^64 addresses), an IPv4 one its address.
 * The address is req.ip, so behind a proxy it is the client's only when
 * BRIG_TRUST_PROXY says which proxies to believe.
 */
export function clientOf(req: Request, res: Response): string {
  const { apiKeyDigest } = locals(res);
  if (apiKeyDigest !== undefined) return `key:${apiKeyDigest}`;
  return `ip:${addressBlock(req.ip ?? req.socket.remoteAddress ?? '')}`;
}

const IPV4_MAPPED_PREFIX = '::ffff:';
const IPV6_GROUPS = 8;
const GROUPS_PER_64 = 4;

/** The address an IPv4 client is counted by, or the /64 an IPv6 one belongs to. */
export function addressBlock(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith(IPV4_MAPPED_PREFIX) && isIPv4(lower.slice(IPV4_MAPPED_PREFIX.length))) return lower.slice(IPV4_MAPPED_PREFIX.length);
  if (isIPv4(lower)) return lower;
  if (!isIPv6(lower)) return 'unknown';
  return `${expandIPv6(lower).slice(0, GROUPS_PER_64).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, each without leading zeros; a zone (%eth0) is dropped. */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  let groups = parse(head);
  let rest = tail === undefined ? [] : parse(tail);
  // A trailing dotted IPv4 part (::1.2.3.4) stands for two groups.
  const last = (rest.length ? rest : groups).at(-1);
  if (last !== undefined && isIPv4(last)) {
    const octets = last.split('.').map(Number);
    const two = [((octets[0]! << 8) | octets[1]!).toString(16), ((octets[2]! << 8) | octets[3]!).toString(16)];
    if (rest.length) rest = [...rest.slice(0, -1), ...two];
    else groups = [...groups.slice(0, -1), ...two];
  }
  const missing = IPV6_GROUPS - groups.length - rest.length;
  return [...groups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...rest].map((g) => Number.parseInt(g, 16).toString(16));
}
