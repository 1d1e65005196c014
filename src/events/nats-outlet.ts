// Events to NATS: each on `<prefix>.<action>` (wharf.push, wharf.pull, ...), the envelope as JSON.
// NATS out of reach never blocks or fails a request: events are dropped (counted, said once in a
// while) until a connection is up. The first connection is retried here on a timer; once
// connected, the client reconnects by itself, and events published while it is away are dropped
// rather than piled up in its buffer.
import { connect, Events, type NatsConnection } from 'nats';
import { EVENT_ACTIONS, type EnvelopeEvent, type EventAction } from './event.js';
import type { EventOutlet } from './event-bus.js';
import type { EventLog } from './webhook-outlet.js';

export interface NatsOutletOptions {
  /** nats://host:port (several separated by commas). */
  url: string;
  /** Subject prefix: an event goes to `<subject>.<action>`. */
  subject: string;
  log: EventLog;
  /** ms between attempts to connect (default 2000). */
  retryMs?: number;
  /** ms between two lines about dropped events (default 10000). */
  logEveryMs?: number;
}

export class NatsOutlet implements EventOutlet {
  private nc: NatsConnection | undefined;
  private connected = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private dropped = 0;
  private lastLogged = 0;
  private readonly subjects: Record<EventAction, string>;
  private readonly encoder = new TextEncoder();
  /** Settles once the first connection is up (tests wait on it). */
  readonly ready: Promise<void>;
  private markReady!: () => void;

  constructor(private readonly opts: NatsOutletOptions) {
    this.subjects = Object.fromEntries(EVENT_ACTIONS.map((a) => [a, `${opts.subject}.${a}`])) as Record<EventAction, string>;
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.connect();
  }

  accepts(): boolean {
    return true;
  }

  send(event: EnvelopeEvent): void {
    if (!this.connected || !this.nc) return this.drop('not connected');
    try {
      this.nc.publish(this.subjects[event.action], this.encoder.encode(JSON.stringify({ events: [event] })));
    } catch (err) {
      this.drop((err as Error).message);
    }
  }

  /** Events dropped since start (NATS away). */
  get droppedCount(): number {
    return this.dropped;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const nc = this.nc;
    const connected = this.connected;
    this.nc = undefined;
    this.connected = false;
    if (!nc) return;
    // What was published goes out before the connection closes, for a moment at most; a connection
    // that is away (reconnecting) is just closed, since a drain would wait for it to come back.
    if (connected) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([nc.drain().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
      clearTimeout(timer);
    }
    if (!nc.isClosed()) await nc.close().catch(() => undefined);
  }

  private drop(reason: string): void {
    this.dropped++;
    const now = Date.now();
    if (now - this.lastLogged < (this.opts.logEveryMs ?? 10_000)) return;
    this.lastLogged = now;
    this.opts.log.warn({ component: 'events', outlet: 'nats', dropped: this.dropped, reason }, `events not sent to NATS (${reason}): ${this.dropped} dropped so far`);
  }

  private connect(): void {
    connect({ servers: this.opts.url.split(','), name: 'wharf', reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: this.opts.retryMs ?? 2000 }).then(
      (nc) => {
        if (this.closed) {
          void nc.close();
          return;
        }
        this.nc = nc;
        this.connected = true;
        this.opts.log.info({ component: 'events', outlet: 'nats', server: nc.getServer() }, 'events: connected to NATS');
        this.markReady();
        void this.watch(nc);
      },
      (err: unknown) => {
        if (this.closed) return;
        this.drop(`cannot connect to ${this.opts.url}: ${(err as Error).message}`);
        this.retry = setTimeout(() => this.connect(), this.opts.retryMs ?? 2000).unref();
      },
    );
  }

  /** Follows the connection: events are dropped while it is away, not buffered without bound. */
  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        this.connected = false;
        this.opts.log.warn({ component: 'events', outlet: 'nats', server: s.data }, 'events: NATS connection lost; reconnecting, events dropped meanwhile');
      } else if (s.type === Events.Reconnect) {
        this.connected = true;
        this.opts.log.info({ component: 'events', outlet: 'nats', server: s.data, dropped: this.dropped }, 'events: reconnected to NATS');
      }
    }
  }
}
