// Registry events (issue 13): what happened to which content, at whose request. The payload is the
// envelope of distribution's notifications (docs "Work with notifications"), so consumers written
// for the reference registry read Wharf's events too: {events: [{id, timestamp, action, target,
// request, actor, source}]}, media type application/vnd.docker.distribution.events.v1+json.
//
// The layers that see what happens (http for push, pull and delete; proxy for fills; gc for
// evictions) emit through EventSink, defined here below all of them; app.ts wires the sinks
// (NATS, webhooks) behind it. Emitting never waits and never throws: a pull is not slowed or
// failed by a consumer.

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

/** push, pull and delete as distribution names them; fill (cached from an upstream) and evict (dropped from the cache) are Wharf's. */
export const EVENT_ACTIONS = ['push', 'pull', 'delete', 'fill', 'evict'] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

/** The content an event is about. */
export interface EventTarget {
  /** Canonical repository name (docker.io/library/alpine for cached content). */
  repository: string;
  digest?: string;
  mediaType?: string;
  /** Bytes of the content. */
  size?: number;
  /** The tag a manifest was pushed, pulled or deleted by. */
  tag?: string;
  /** Where the content can be fetched (the manifest or blob URL). */
  url?: string;
}

/** The request an event came from (distribution's RequestRecord), with the caller. */
export interface EventRequest {
  id: string;
  /** The client's address. */
  addr: string;
  host?: string;
  method: string;
  useragent?: string;
  /** The signed-in user (the actor); none for anonymous callers. */
  user?: string;
}

export interface RegistryEvent {
  action: EventAction;
  target: EventTarget;
  /** None for what the registry does by itself (evictions by the collector). */
  request?: EventRequest;
}

export interface EventSink {
  /** Queues the event for every outlet that wants it; returns at once, never throws. */
  emit(event: RegistryEvent): void;
  /** False when nothing listens: callers may skip building events. */
  readonly enabled: boolean;
}

/** A sink that drops everything: events off. */
export const NO_EVENTS: EventSink = { enabled: false, emit: () => undefined };

/** One event as the envelope carries it (distribution's Event). */
export interface EnvelopeEvent {
  id: string;
  timestamp: string;
  action: EventAction;
  target: {
    mediaType?: string;
    size?: number;
    digest?: string;
    length?: number;
    repository: string;
    url?: string;
    tag?: string;
  };
  request?: { id: string; addr: string; host?: string; method: string; useragent?: string };
  actor: { name?: string };
  source: { addr: string; instanceID: string };
}

export interface Envelope {
  events: EnvelopeEvent[];
}

/** The envelope form of an event. `length` repeats `size`, as distribution writes both. */
export function envelopeEvent(event: RegistryEvent, id: string, timestamp: string, source: EnvelopeEvent['source']): EnvelopeEvent {
  const { target: t, request: r } = event;
  const target: EnvelopeEvent['target'] = { repository: t.repository };
  if (t.mediaType !== undefined) target.mediaType = t.mediaType;
  if (t.size !== undefined) {
    target.size = t.size;
    target.length = t.size;
  }
  if (t.digest !== undefined) target.digest = t.digest;
  if (t.url !== undefined) target.url = t.url;
  if (t.tag !== undefined) target.tag = t.tag;
  const out: EnvelopeEvent = { id, timestamp, action: event.action, target, actor: {}, source };
  if (r) {
    out.request = { id: r.id, addr: r.addr, method: r.method };
    if (r.host !== undefined) out.request.host = r.host;
    if (r.useragent !== undefined) out.request.useragent = r.useragent;
    if (r.user !== undefined) out.actor.name = r.user;
  }
  return out;
}

/** `sink` with each event's repository renamed by `canonicalOf` (stored names → the canonical names events carry). */
export function withCanonicalNames(sink: EventSink, canonicalOf: (stored: string) => string): EventSink {
  if (!sink.enabled) return sink;
  return {
    enabled: true,
    emit: (event) => sink.emit({ ...event, target: { ...event.target, repository: canonicalOf(event.target.repository) } }),
  };
}
