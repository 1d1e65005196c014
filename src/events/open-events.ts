// The event outlets of the configuration (events.nats, events.webhooks) behind one EventBus; with
// neither, NO_EVENTS, so the layers skip building events at all.
import type { WharfConfig, WebhookConfig } from '../config/schema.js';
import { NO_EVENTS, type EventSink } from './event.js';
import { EventBus, type EventOutlet } from './event-bus.js';
import { NatsOutlet } from './nats-outlet.js';
import { WebhookOutlet, type EventLog } from './webhook-outlet.js';

export interface OpenedEvents {
  sink: EventSink;
  close(): Promise<void>;
}

export function openEvents(config: WharfConfig['events'], opts: { log: EventLog; sourceAddr: () => string }): OpenedEvents {
  const outlets: EventOutlet[] = [];
  if (config.nats) outlets.push(new NatsOutlet({ url: config.nats.url, subject: config.nats.subject, log: opts.log }));
  for (const w of config.webhooks as readonly WebhookConfig[]) {
    outlets.push(
      new WebhookOutlet({
        url: w.url,
        actions: w.actions,
        ...(w.secret !== undefined ? { secret: w.secret } : {}),
        timeout: w.timeout,
        retries: w.retries,
        backoff: w.backoff,
        maxBackoff: w.maxBackoff,
        queueSize: w.queueSize,
        log: opts.log,
      }),
    );
  }
  if (outlets.length === 0) return { sink: NO_EVENTS, close: async () => undefined };
  const bus = new EventBus(outlets, { sourceAddr: opts.sourceAddr });
  return { sink: bus, close: () => bus.close() };
}
