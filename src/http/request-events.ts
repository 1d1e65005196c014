// What a /v2 request tells the event sink: push (a manifest put, a blob upload completed), pull (a
// manifest or blob GET; not HEAD, as distribution), delete. The request part of each event comes
// from here: its id, the client's address (behind http.trustProxy, the one X-Forwarded-For names),
// Host, method, User-Agent, and the signed-in user. With events off, notify() is a no-op and nothing
// is built.
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { EventAction, EventRequest, EventSink, EventTarget } from '../events/event.js';

/**
 * Emits one event of this request on the repository the client named `name`, stored here as `stored`
 * (the event names its canonical name).
 */
export type Notify = (action: EventAction, name: string, stored: string, target: Omit<EventTarget, 'repository' | 'url'>, kind: 'manifests' | 'blobs') => void;

/** What a /v2 handler gets of events: notify, and the request for the fills it may cause. */
export interface RequestEvents {
  notify: Notify;
  request: EventRequest | undefined;
}

export const NO_REQUEST_EVENTS: RequestEvents = { notify: () => undefined, request: undefined };

const header = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

export function eventRequest(raw: IncomingMessage, id: string, addr: string, user: string | undefined): EventRequest {
  const out: EventRequest = { id, addr, method: raw.method ?? 'GET' };
  const host = header(raw.headers.host);
  if (host !== undefined) out.host = host.slice(0, 300);
  const ua = header(raw.headers['user-agent']);
  if (ua !== undefined) out.useragent = ua.slice(0, 500);
  if (user) out.user = user;
  return out;
}

/** The base URL of content in events: publicUrl, else the request's Host over http. */
function baseUrl(raw: IncomingMessage, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  const host = header(raw.headers.host);
  return `http://${host !== undefined && /^[A-Za-z0-9.:[\]-]{1,300}$/.test(host) ? host : 'localhost'}`;
}

/** The events of one request, sent to `sink`; canonical names from `canonicalOf`. */
export function requestEvents(
  sink: EventSink,
  canonicalOf: (stored: string) => string,
  request: FastifyRequest,
  user: string | undefined,
  publicUrl: string | undefined,
): RequestEvents {
  if (!sink.enabled) return NO_REQUEST_EVENTS;
  const req = eventRequest(request.raw, request.id, request.ip, user);
  return {
    request: req,
    notify: (action, name, stored, target, kind) => {
      const url = target.digest === undefined ? undefined : `${baseUrl(request.raw, publicUrl)}/v2/${name}/${kind}/${target.digest}`;
      sink.emit({ action, target: { repository: canonicalOf(stored), ...target, ...(url ? { url } : {}) }, request: req });
    },
  };
}
