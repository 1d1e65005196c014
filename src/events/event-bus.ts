// The EventSink app.ts hands to the layers: each event becomes one envelope event (an id, a
// timestamp, this node as its source) and goes to every outlet whose filter takes its action. An
// outlet queues it and returns; sending happens later, off the request's path.
import { randomUUID } from 'node:crypto';
import { envelopeEvent, type EnvelopeEvent, type EventAction, type EventSink, type RegistryEvent } from './event.js';

/** Where events go (NATS, one webhook): it queues and returns, never throws. */
export interface EventOutlet {
  accepts(action: EventAction): boolean;
  send(event: EnvelopeEvent): void;
  close(): Promise<void>;
}

export interface EventBusOptions {
  /** This node as distribution names it in `source`: its address (host:port), asked once, at the first event. */
  sourceAddr: () => string;
  /** Identifies this process in every event it sends (default: a random UUID). */
  instanceID?: string;
  now?: () => number;
}

export class EventBus implements EventSink {
  readonly enabled: boolean;
  private source: EnvelopeEvent['source'] | undefined;
  private readonly instanceID: string;
  private readonly now: () => number;

  constructor(
    private readonly outlets: readonly EventOutlet[],
    private readonly opts: EventBusOptions,
  ) {
    this.enabled = outlets.length > 0;
    this.instanceID = opts.instanceID ?? randomUUID();
    this.now = opts.now ?? Date.now;
  }

  emit(event: RegistryEvent): void {
    let built: EnvelopeEvent | undefined;
    for (const outlet of this.outlets) {
      if (!outlet.accepts(event.action)) continue;
      this.source ??= { addr: this.opts.sourceAddr(), instanceID: this.instanceID };
      built ??= envelopeEvent(event, randomUUID(), new Date(this.now()).toISOString(), this.source);
      outlet.send(built);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.outlets.map((o) => o.close()));
  }
}
