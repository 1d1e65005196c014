// Fill leases on PostgreSQL: one holder per digest however many nodes claim at once, a holder's own
// claim renewed, an expired lease taken over with the writer it names, releases only by the holder.
import t from 'tap';
import { PostgresFillLeases } from '../../src/metadata/postgres-fill-leases.js';
import { openTestDatabase } from '../helpers/postgres.js';

const D = `sha256:${'a'.repeat(64)}`;
const holder = (n: number) => ({ node: `node-${n}`, url: `http://10.0.0.${n}:5000`, repo: 'hub/library/app' });

t.test('one owner among nodes claiming at once; the others are told who holds it', async (t) => {
  const leases = new PostgresFillLeases(await openTestDatabase(t, { poolSize: 8 }));
  const claims = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((n) => leases.claim(D, holder(n), 60_000, `writer-${n}`)));
  const owners = claims.flatMap((c, i) => (c.owned ? [i + 1] : []));
  t.equal(owners.length, 1, 'exactly one node holds the lease');
  const owner = owners[0]!;
  t.same(claims[owner - 1], { owned: true, writer: `writer-${owner}` }, 'with the writer it named');
  for (const c of claims) if (!c.owned) t.same(c.lease, { digest: D, ...holder(owner), expired: false }, 'the others are told who holds it');
  t.same(await leases.claim(D, holder(owner), 60_000, 'another-writer'), { owned: true, writer: `writer-${owner}` }, "the holder's own claim keeps its writer");
});

t.test('an expired lease is taken over with its writer; renewals and releases count for the holder only', async (t) => {
  const leases = new PostgresFillLeases(await openTestDatabase(t));
  t.same(await leases.claim(D, holder(1), 300, 'w1'), { owned: true, writer: 'w1' });
  await leases.renew('node-1', [D], 60_000);
  t.equal((await leases.claim(D, holder(2), 300, 'w2')).owned, false, 'renewed: still held');
  await leases.renew('node-1', [D], 100);
  // Expiry is on the database's clock: looked at until it says so.
  for (const deadline = Date.now() + 5000; !(await leases.peek(D))?.expired && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
  t.match(await leases.peek(D), { node: 'node-1', expired: true }, 'not renewed: expired');
  t.same(await leases.claim(D, holder(2), 60_000, 'w2'), { owned: true, writer: 'w1' }, 'taken over, in the writer of the dead holder');
  await leases.renew('node-1', [D], 60_000);
  await leases.release(D, 'node-1');
  t.match(await leases.peek(D), { node: 'node-2', expired: false }, 'the former holder neither renews nor releases it');
  await leases.release(D, 'node-2');
  t.equal(await leases.peek(D), undefined, 'released by its holder');
  t.same(await leases.claim(D, holder(3), 60_000, 'w3'), { owned: true, writer: 'w3' }, 'a new lease names a new writer');
});
