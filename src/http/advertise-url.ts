// How the other nodes of a cluster reach this one (cluster.advertiseUrl, or what the server listens
// on), and this process's node id.
import type { Server } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { randomBytes } from 'node:crypto';

/** host/pid/random: unique per process run, and says in a lease row which machine and process hold it. */
export function nodeId(): string {
  return `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
}

/**
 * cluster.advertiseUrl when configured; else http://<listen address>:<port> (https with tls), where a wildcard listen
 * address stands for this machine's first non-loopback IPv4 address (a pod's address in Kubernetes).
 */
export function advertiseUrl(configured: string | undefined, server: Pick<Server, 'address'>, scheme: 'http' | 'https' = 'http'): string {
  if (configured !== undefined) return configured.replace(/\/$/, '');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the server does not listen on a TCP port: set cluster.advertiseUrl');
  let host = address.address;
  if (host === '0.0.0.0' || host === '::') host = firstIPv4() ?? '127.0.0.1';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

function firstIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}
