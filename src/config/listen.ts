// `listen` is HOST:PORT as users write it; node's listen() wants them apart, IPv6 without brackets.

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Splits HOST:PORT. `[::]:5000` → `::`, `:5000` (empty host) → `0.0.0.0`, port 0 → any free port.
 * Throws a RangeError naming the problem; the config loader turns it into a violation.
 */
export function parseListen(s: string): ListenAddress {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || s[end + 1] !== ':') throw new RangeError(`"${s}" is not HOST:PORT: expected [IPV6]:PORT`);
    host = s.slice(1, end);
    portText = s.slice(end + 2);
    if (host === '') throw new RangeError(`"${s}" is not HOST:PORT: empty IPv6 address`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) throw new RangeError(`"${s}" is not HOST:PORT: no port`);
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    // A bare IPv6 address (`::1:5000`) is ambiguous: its last group could be the port.
    if (host.includes(':')) throw new RangeError(`"${s}" is not HOST:PORT: write IPv6 addresses in brackets, e.g. [::1]:5000`);
    if (host === '') host = '0.0.0.0';
  }
  if (!/^[0-9]{1,5}$/.test(portText)) throw new RangeError(`"${s}" is not HOST:PORT: port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65535) throw new RangeError(`"${s}": port ${port} is out of range (0-65535)`);
  return { host, port };
}

/** The URL form of a bound address: IPv6 hosts get their brackets back. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
