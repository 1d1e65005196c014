// A NATS subscriber on a subject prefix of the test's own (the real server on 127.0.0.1:4222): the
// envelopes published under it, with their subjects, and a wait for the one a test expects.
import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import type { Envelope, EnvelopeEvent } from '../../src/events/event.js';

export const NATS_URL = process.env.WHARF_TEST_NATS ?? 'nats://127.0.0.1:4222';

export interface Received {
  subject: string;
  envelope: Envelope;
  event: EnvelopeEvent;
}

export interface Subscriber {
  prefix: string;
  received: Received[];
  /** The first event matching `match`, now or when it arrives; rejects after `ms`. */
  waitFor(match: (r: Received) => boolean, ms?: number): Promise<Received>;
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export async function subscribe(t: Teardownable, url = NATS_URL, prefix = `wharftest.${randomBytes(6).toString('hex')}`): Promise<Subscriber> {
  const nc = await connect({ servers: url });
  t.teardown(() => nc.close());
  const received: Received[] = [];
  let waiters: Array<() => void> = [];
  const sub = nc.subscribe(`${prefix}.>`);
  void (async () => {
    for await (const m of sub) {
      const envelope = JSON.parse(new TextDecoder().decode(m.data)) as Envelope;
      for (const event of envelope.events) received.push({ subject: m.subject, envelope, event });
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    }
  })();
  // The subscription is in place on the server before anything is published.
  await nc.flush();
  return {
    prefix,
    received,
    async waitFor(match, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = received.find(match);
        if (found) return found;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no such event within ${ms} ms; received:\n${received.map((r) => `${r.subject} ${JSON.stringify(r.event)}`).join('\n')}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
  };
}
