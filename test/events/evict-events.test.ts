// Evict events from the collector (cache.maxAge, a clock moved forward): one per cached manifest it
// drops, on <prefix>.evict of a real NATS; local images and plain garbage send none.
import t from 'tap';
import { EventBus } from '../../src/events/event-bus.js';
import { NatsOutlet } from '../../src/events/nats-outlet.js';
import { DAY, options, setup } from '../gc/gc-setup.js';
import { NATS_URL, subscribe } from './nats-subscriber.js';

t.test('the collector evicting a cold cached image sends an evict event; local and warm images none', async (t) => {
  const sub = await subscribe(t);
  const log = { info: () => undefined, warn: () => undefined };
  const nats = new NatsOutlet({ url: NATS_URL, subject: sub.prefix, log });
  const bus = new EventBus([nats], { sourceAddr: () => 'gc-test:0', instanceID: 'gc-test' });
  t.teardown(() => bus.close());
  await nats.ready;

  const s = await setup(t, { events: bus });
  const cold = await s.image('hub/library/cold', 'cold', { tag: 'latest', local: false });
  const warm = await s.image('hub/library/warm', 'warm', { tag: 'latest', local: false });
  await s.image('team/app', 'mine', { tag: 'v1' });
  const untagged = await s.image('team/app', 'untagged');
  s.clock.skew = 10 * DAY;
  await s.metadata.touchAccess({ manifests: [{ repo: 'hub/library/warm', digest: warm.digest, at: s.now() - DAY }], blobs: [] });

  const dry = await s.gc.run(options({ cacheMaxAge: 7 * DAY, deleteUntagged: true, dryRun: true }));
  t.equal(dry.evictedByAge, 1);
  const r = await s.gc.run(options({ cacheMaxAge: 7 * DAY, deleteUntagged: true }));
  t.equal(r.evictedByAge, 1);
  t.equal(r.manifestsDeleted, 2, 'the cold cached image and the untagged local one');

  const evict = await sub.waitFor((e) => e.event.action === 'evict');
  t.equal(evict.subject, `${sub.prefix}.evict`);
  t.same(evict.event.target, { repository: 'hub/library/cold', digest: cold.digest });
  t.equal(evict.event.request, undefined, 'no request: the collector did it');
  t.same(evict.event.source, { addr: 'gc-test:0', instanceID: 'gc-test' });
  // A marker published after the run arrives after anything the run sent.
  bus.emit({ action: 'push', target: { repository: 'marker' } });
  await sub.waitFor((e) => e.event.target.repository === 'marker');
  t.same(
    sub.received.filter((e) => e.event.action === 'evict').map((e) => e.event.target.digest),
    [cold.digest],
    'one evict event, none for the dry run, the warm image or the untagged local manifest',
  );
  t.notOk(sub.received.some((e) => e.event.target.digest === untagged.digest));
});
