// Events to one webhook endpoint: a POST of the envelope per event (distribution's media type),
// signed with HMAC-SHA256 over the raw body when a secret is set (`X-Wharf-Signature:
// sha256=<hex>`, as GitHub signs its webhooks). Events wait in a bounded queue and are sent one at a
// time; a failed POST (an error, a timeout, a status outside 2xx) is tried again after a backoff
// that doubles each time, up to `retries` times, then the event is dropped with a warning. A full
// queue drops its oldest event (counted, said once in a while): emitting never waits, so a slow or
// dead receiver never holds a pull.
import { createHmac } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { EVENTS_MEDIA_TYPE, type EnvelopeEvent, type EventAction } from './event.js';
import type { EventOutlet } from './event-bus.js';

export const SIGNATURE_HEADER = 'x-wharf-signature';

export interface EventLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface WebhookOptions {
  url: string;
  /** Actions sent; empty = every action. */
  actions: readonly EventAction[];
  /** HMAC-SHA256 key of the signature header; none = unsigned. */
  secret?: string;
  /** ms one POST may take, connect to last byte. */
  timeout: number;
  /** Further attempts after a failed one. */
  retries: number;
  /** ms before the first retry; doubled for each next one, up to maxBackoff. */
  backoff: number;
  maxBackoff: number;
  /** Events waiting at most; more drop the oldest. */
  queueSize: number;
  log: EventLog;
  /** ms between two lines about dropped events (default 10000). */
  logEveryMs?: number;
  dispatcher?: Dispatcher;
}

export class WebhookOutlet implements EventOutlet {
  private readonly queue: EnvelopeEvent[] = [];
  /** Index of the oldest queued event (the queue is compacted as it drains). */
  private head = 0;
  private sending: Promise<void> | undefined;
  private closed = false;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private lastLogged = 0;
  private readonly actions: ReadonlySet<EventAction>;
  /** Counters: events delivered, dropped because the queue was full, dropped after the last retry. */
  readonly stats = { sent: 0, overflowed: 0, failed: 0 };

  constructor(private readonly opts: WebhookOptions) {
    this.actions = new Set(opts.actions);
  }

  accepts(action: EventAction): boolean {
    return this.actions.size === 0 || this.actions.has(action);
  }

  get queued(): number {
    return this.queue.length - this.head;
  }

  send(event: EnvelopeEvent): void {
    if (this.closed) return;
    if (this.queued >= this.opts.queueSize) {
      this.head++;
      this.stats.overflowed++;
      this.warnNow(() => ({
        obj: { overflowed: this.stats.overflowed, queueSize: this.opts.queueSize },
        msg: `webhook ${this.where()} is not keeping up: its queue of ${this.opts.queueSize} events is full, the oldest dropped (${this.stats.overflowed} so far)`,
      }));
    }
    this.queue.push(event);
    this.compact();
    this.sending ??= this.drain().finally(() => (this.sending = undefined));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    this.wake?.();
    await this.sending;
  }

  private async drain(): Promise<void> {
    while (!this.closed && this.queued > 0) {
      const event = this.queue[this.head++] as EnvelopeEvent;
      this.compact();
      await this.deliver(event);
    }
    if (this.queued === 0) {
      this.queue.length = 0;
      this.head = 0;
    }
  }

  /** Drops the slots of events already taken once they are most of the array. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /** One event, tried 1 + retries times. */
  private async deliver(event: EnvelopeEvent): Promise<void> {
    const body = JSON.stringify({ events: [event] });
    const headers: Record<string, string> = { 'content-type': EVENTS_MEDIA_TYPE };
    if (this.opts.secret !== undefined) headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', this.opts.secret).update(body).digest('hex')}`;
    let error = '';
    for (let attempt = 0; attempt <= this.opts.retries && !this.closed; attempt++) {
      if (attempt > 0) await this.sleep(Math.min(this.opts.backoff * 2 ** (attempt - 1), this.opts.maxBackoff));
      if (this.closed) return;
      try {
        const res = await request(this.opts.url, {
          method: 'POST',
          headers,
          body,
          headersTimeout: this.opts.timeout,
          bodyTimeout: this.opts.timeout,
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.timeout)]),
          ...(this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : {}),
        });
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          this.stats.sent++;
          return;
        }
        error = `answered ${res.statusCode}`;
      } catch (err) {
        error = (err as Error).message;
      }
    }
    if (this.closed) return;
    this.stats.failed++;
    this.warnNow(() => ({
      obj: { action: event.action, eventId: event.id, reason: error, failed: this.stats.failed },
      msg: `webhook ${this.where()}: event ${event.action} dropped after ${this.opts.retries + 1} attempts (${error})`,
    }));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** The endpoint as logs name it: no query string or credentials. */
  private where(): string {
    try {
      const u = new URL(this.opts.url);
      return `${u.origin}${u.pathname}`;
    } catch {
      return 'endpoint';
    }
  }

  private warnNow(line: () => { obj: object; msg: string }): void {
    const now = Date.now();
    if (now - this.lastLogged < (this.opts.logEveryMs ?? 10_000)) return;
    this.lastLogged = now;
    const { obj, msg } = line();
    this.opts.log.warn({ component: 'events', outlet: 'webhook', url: this.where(), ...obj }, msg);
  }
}
