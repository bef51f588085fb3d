import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Where a callback may go. A callback URL comes from whoever submits a run,
 * and its body is that run's output: a worker that POSTs it anywhere is a
 * blind SSRF from the worker's network. So only global unicast addresses are
 * admitted, checked on the addresses the name resolved to (the caller
 * connects to the address checked here, see target.ts), plus the private
 * receivers the operator lists in BRIG_CALLBACK_ALLOW.
 *
 * Ranges come from ipaddr.js's range(): anything it names (loopback,
 * private, linkLocal, carrierGradeNat, uniqueLocal, multicast, reserved
 * (documentation, benchmarking, 240/4), ...) is refused; only 'unicast'
 * passes. IPv6 must also lie in 2000::/3, the only block IANA allocates as
 * global unicast: ipaddr.js calls ::7f00:1 (IPv4-compatible) 'unicast'.
 * IPv4-mapped addresses are judged as the IPv4 address they reach; 6to4 and
 * NAT64 (64:ff9b::/96) as the IPv4 address they embed; Teredo is refused.
 */
export interface AddressRefusal {
  address: string;
  /** ipaddr.js's range name, or what else made it so. */
  reason: string;
}

/** Never a receiver, allow-listed or not: connecting to 0.0.0.0 reaches this machine on Linux. */
const NEVER: ReadonlySet<string> = new Set(['unspecified', 'multicast', 'broadcast']);

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
const IPV4_BYTES = 4;
/** 6to4 (RFC 3056): 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD in bytes 2 to 5. */
const SIX_TO_FOUR_V4_OFFSET = 2;
/** NAT64 (RFC 6052) with the /96 prefix: the last 4 bytes. */
const NAT64_V4_OFFSET = 12;
/** ::ffff:0:0/96 holds the IPv4-mapped addresses. */
const IPV4_MAPPED_PREFIX_BITS = 96;
const IPV4_BITS = 32;
const IPV6_BITS = 128;

export class AddressPolicy {
  private readonly cidrs: [Address, number][] = [];
  private readonly names = new Set<string>();

  /** `allow`: BRIG_CALLBACK_ALLOW as config.ts parsed it (CIDRs, addresses, host names). */
  constructor(allow: readonly string[] = []) {
    for (const entry of allow) {
      const [text, bits] = entry.split('/') as [string, string | undefined];
      const address = parseAddress(text);
      if (address === null) this.names.add(hostKey(entry));
      else if (bits === undefined) this.cidrs.push([address, address.kind() === 'ipv4' ? IPV4_BITS : IPV6_BITS]);
      // An IPv4-mapped CIDR (::ffff:10.0.0.0/104) came back as IPv4: it covers the IPv4 addresses it maps.
      else if (address.kind() === 'ipv4' && text.includes(':'))
        this.cidrs.push([address, Math.max(0, Number(bits) - IPV4_MAPPED_PREFIX_BITS)]);
      else this.cidrs.push([address, Number(bits)]);
    }
  }

  /**
   * Null when `address` (a resolved or literal IP of the URL host
   * `hostname`) may receive a callback; else why not.
   */
  check(address: string, hostname: string): AddressRefusal | null {
    const parsed = parseAddress(address);
    if (parsed === null) return { address, reason: 'not an IP address' };
    const range = parsed.range();
    if (NEVER.has(range)) return { address, reason: range };
    if (this.names.has(hostKey(hostname))) return null;
    if (this.cidrs.some((cidr) => cidr[0].kind() === parsed.kind() && parsed.match(cidr))) return null;
    const reason = globalUnicastRefusal(parsed);
    return reason === null ? null : { address, reason };
  }
}

/**
 * Null for a global unicast address; else the name of the range that makes
 * it something else. IPv4-mapped addresses must come through parseAddress().
 */
export function globalUnicastRefusal(address: Address): string | null {
  if (address.kind() === 'ipv4') {
    const range = address.range();
    return range === 'unicast' ? null : range;
  }
  const v6 = address as ipaddr.IPv6;
  const range = v6.range() as string;
  if (range === '6to4') return embeddedRefusal('6to4', v6, SIX_TO_FOUR_V4_OFFSET);
  if (range === 'rfc6052' && v6.match(NAT64_WELL_KNOWN)) return embeddedRefusal('nat64', v6, NAT64_V4_OFFSET);
  if (range !== 'unicast') return range;
  return v6.match(GLOBAL_UNICAST_V6) ? null : 'outside 2000::/3 (not global unicast)';
}

function embeddedRefusal(kind: string, address: ipaddr.IPv6, offset: number): string | null {
  const v4 = ipaddr.fromByteArray(address.toByteArray().slice(offset, offset + IPV4_BYTES));
  const reason = globalUnicastRefusal(v4);
  return reason === null ? null : `${kind} of ${v4.toString()} (${reason})`;
}

/**
 * An address as the connection will use it; null for anything else. IPv6
 * goes through the WHATWG URL parser first, which writes every address in
 * hex: ipaddr.js reads '::127.0.0.1' (IPv4-compatible, ::7f00:1, the form
 * getaddrinfo and libuv print it in) as ::ffff:127.0.0.1, which is another
 * address. IPv4 must be four decimal parts: ipaddr.js would take 0x7f.1.
 * IPv4-mapped addresses come back as the IPv4 address they reach.
 */
export function parseAddress(text: string): Address | null {
  if (!text.includes(':')) return ipaddr.IPv4.isValidFourPartDecimal(text) ? ipaddr.IPv4.parse(text) : null;
  // A zone (fe80::1%eth0) changes which link, not what kind of address.
  const [bare] = text.split('%') as [string];
  let canonical: string;
  try {
    canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  return ipaddr.IPv6.isValid(canonical) ? ipaddr.process(canonical) : null;
}

/** Host names compare without case and without a trailing dot (the root). */
export function hostKey(hostname: string): string {
  return hostname.toLowerCase().replace(/\.$/, '');
}
