import { lookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import type { AddressPolicy, AddressRefusal } from './address-policy.ts';

/** One answer of a name lookup. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address a host name resolves to. Injectable for tests (a resolver that rebinds). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/**
 * The system's resolver (getaddrinfo, so /etc/hosts counts: 'localhost' is
 * refused for what it resolves to, not for its name). Every answer, in the
 * order the system gives them.
 */
export const systemResolver: Resolver = async (hostname) => {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * Where a callback goes: the URL as the WHATWG parser normalised it (so
 * 2130706433, 0x7f000001 and 0177.0.0.1 are already 127.0.0.1 here), and
 * the one address that was checked, which is the one connected to.
 */
export interface CallbackTarget {
  url: URL;
  /** The URL's host without IPv6 brackets: what the Host header, SNI and the certificate check use. */
  hostname: string;
  address: string;
  family: 4 | 6;
}

/** The callback URL may not be used: a permanent refusal, never retried. */
export class CallbackRefused extends Error {
  constructor(
    message: string,
    readonly refusal?: AddressRefusal,
  ) {
    super(message);
    this.name = 'CallbackRefused';
  }
}

/**
 * Parses the URL, resolves its host once, and checks every address it
 * resolved to: one refused answer refuses the URL (a name that answers both
 * a public and a private address is not a receiver to trust). The first
 * answer is then pinned: pinnedLookup() hands it to the connection, so
 * nothing resolves the name again between the check and the connect (DNS
 * rebinding).
 */
export async function resolveTarget(rawUrl: string, policy: AddressPolicy, resolve: Resolver): Promise<CallbackTarget> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new CallbackRefused('the callback URL does not parse');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CallbackRefused(`the callback URL's scheme ${url.protocol} is not http or https`);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const literal = isIP(hostname);
  const answers: ResolvedAddress[] = literal ? [{ address: hostname, family: literal === 6 ? 6 : 4 }] : await resolve(hostname);
  if (answers.length === 0) throw new Error(`${hostname} resolved to no address`);
  for (const answer of answers) {
    const refusal = policy.check(answer.address, hostname);
    if (refusal) {
      throw new CallbackRefused(
        `callback host ${hostname} is ${refusal.address === hostname ? '' : `${refusal.address}, `}not a global unicast address (${refusal.reason}); list private receivers in BRIG_CALLBACK_ALLOW`,
        refusal,
      );
    }
  }
  const [pinned] = answers as [ResolvedAddress];
  return { url, hostname, address: pinned.address, family: pinned.family };
}

/**
 * A lookup for net/tls connect that answers only the checked address,
 * whatever name it is asked about. Node asks with all: true when it tries
 * address families in turn (autoSelectFamily), so both shapes are answered.
 */
export function pinnedLookup(target: Pick<CallbackTarget, 'address' | 'family'>): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
}
