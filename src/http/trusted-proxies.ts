// Which peers are reverse proxies whose X-Forwarded-For may be believed (http.trustProxy): addresses,
// CIDRs, or the names loopback, linklocal and uniquelocal. One matcher serves fastify (request.ip)
// and the per-address connection cap, so both agree on who the client is.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const NAMED: Record<string, Array<[string, number, 'ipv4' | 'ipv6']>> = {
  loopback: [
    ['127.0.0.0', 8, 'ipv4'],
    ['::1', 128, 'ipv6'],
  ],
  linklocal: [
    ['169.254.0.0', 16, 'ipv4'],
    ['fe80::', 10, 'ipv6'],
  ],
  uniquelocal: [
    ['10.0.0.0', 8, 'ipv4'],
    ['172.16.0.0', 12, 'ipv4'],
    ['192.168.0.0', 16, 'ipv4'],
    ['fc00::', 7, 'ipv6'],
  ],
};

/** A predicate for "this peer address is a trusted proxy"; throws on an entry that is not an address or CIDR. */
export function trustedProxies(entries: readonly string[]): (address: string) => boolean {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of entries) {
    const named = NAMED[entry];
    if (named) {
      for (const [net, prefix, type] of named) list.addSubnet(net, prefix, type);
      continue;
    }
    const [net = '', prefixText] = entry.split('/');
    const type = isIPv4(net) ? 'ipv4' : isIPv6(net) ? 'ipv6' : undefined;
    const max = type === 'ipv4' ? 32 : 128;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (type === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new Error(`http.trustProxy: "${entry}" is not an IP address, a CIDR (10.0.0.0/8, fd00::/8), loopback, linklocal or uniquelocal`);
    }
    list.addSubnet(net, prefix, type);
  }
  return (address) => {
    // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    if (v4 !== undefined) return list.check(v4, 'ipv4');
    if (isIPv4(address)) return list.check(address, 'ipv4');
    return isIPv6(address) && list.check(address, 'ipv6');
  };
}
