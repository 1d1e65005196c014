// undici's Agent and Pool without the rest of the package. Its index loads everything it offers:
// fetch, WebSocket, EventSource, the HTTP caches, the mock agents (measured in a bare process: 4.7 MiB
// of heap and 18 MiB of RSS, against 1.7 and 10 for the dispatchers alone), where Wharf only sends
// requests through an Agent and a Pool. These are undici's own modules (the package has no exports map,
// so their paths are public), and request() and its siblings are put on the dispatchers exactly as
// undici's index does it. The proxy agent (and the SOCKS and tunnelling code it brings) is loaded only
// when a proxy variable is set.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);
const Dispatcher = load('undici/lib/dispatcher/dispatcher') as { prototype: object };
Object.assign(Dispatcher.prototype, load('undici/lib/api') as object);

export const Agent = load('undici/lib/dispatcher/agent') as typeof Undici.Agent;
export const Pool = load('undici/lib/dispatcher/pool') as typeof Undici.Pool;
export type Agent = Undici.Agent;
export type Pool = Undici.Pool;
export type EnvHttpProxyAgent = Undici.EnvHttpProxyAgent;

/** undici's EnvHttpProxyAgent, loaded on the first call. */
export function envHttpProxyAgent(options: Undici.EnvHttpProxyAgent.Options): EnvHttpProxyAgent {
  const EnvHttpProxyAgent = load('undici/lib/dispatcher/env-http-proxy-agent') as typeof Undici.EnvHttpProxyAgent;
  return new EnvHttpProxyAgent(options);
}
