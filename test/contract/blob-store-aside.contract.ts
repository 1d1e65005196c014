// The BlobStore contract for the collector's side: list, and the two-step delete (setAside, then
// restore or purge; leftAside after a crash). Every driver runs it from its own test file:
// blobStoreAsideContract(t, 'fs', (t) => a fresh, empty store and a way to open it again).
import type { BlobStore } from '../../src/storage/blob-store.js';
import { BlobNotFoundError } from '../../src/storage/storage-errors.js';
import { digestOf, type DigestAlgorithm } from '../../src/oci/digest.js';
import type { OpenBlobStore } from './blob-store.contract.js';
import type { TestObject } from './contract-helpers.js';

/** Stores `content` as a committed blob; its digest. */
async function put(store: BlobStore, content: string, algorithm: DigestAlgorithm = 'sha256'): Promise<string> {
  const digest = digestOf(content, algorithm);
  const writer = await store.writer();
  await writer.write([Buffer.from(content)]);
  await writer.commit(digest);
  await writer.cancel();
  return digest;
}

async function read(store: BlobStore, digest: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await store.open(digest)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function blobStoreAsideContract(t: TestObject, name: string, open: OpenBlobStore): Promise<unknown> {
  return t.test(`BlobStore aside and list contract: ${name}`, async (t) => {
    t.test('a blob set aside is neither stat-ed nor opened', async (t) => {
      const { store } = await open(t);
      const d = await put(store, 'set me aside');
      const handle = await store.setAside(d);
      t.equal(handle?.digest, d, 'the handle names the digest');
      t.equal(await store.stat(d), undefined);
      await t.rejects(store.open(d), BlobNotFoundError);
      t.equal(await store.setAside(d), undefined, 'a second set-aside finds nothing');
      t.equal(await store.setAside(digestOf('never stored')), undefined, 'an absent blob: undefined');
    });

    t.test('restore puts the same bytes back', async (t) => {
      const { store } = await open(t);
      const d = await put(store, 'back again');
      const handle = await store.setAside(d);
      await store.restore(handle!);
      t.match(await store.stat(d), { size: 10 });
      t.equal(await read(store, d), 'back again');
      t.same(await all(store.leftAside()), [], 'nothing left aside');
    });

    t.test('purge removes the bytes for good', async (t) => {
      const { store } = await open(t);
      const d = await put(store, 'purged');
      const handle = await store.setAside(d);
      await store.purge(handle!);
      t.equal(await store.stat(d), undefined);
      await t.rejects(store.open(d), BlobNotFoundError);
      t.same(await all(store.leftAside()), [], 'nothing left aside');
      t.same(await store.list(undefined, 10), []);
    });

    t.test('restore after a writer placed the same blob meanwhile keeps the bytes', async (t) => {
      const { store } = await open(t);
      const d = await put(store, 'written twice');
      const handle = await store.setAside(d);
      t.equal(await put(store, 'written twice'), d, 'the writer places its own copy');
      await store.restore(handle!);
      t.equal(await read(store, d), 'written twice');
      t.same(await all(store.leftAside()), [], 'the set-aside copy is gone');
    });

    t.test('leftAside lists what a previous instance set aside and stopped on', async (t) => {
      const { store, reopen } = await open(t);
      const kept = await put(store, 'recorded again');
      const dropped = await put(store, 'not recorded');
      const other = await put(store, 'untouched');
      await store.setAside(kept);
      await store.setAside(dropped);
      // The collector stops here (a crash); the next process opens the store again.
      const next = await reopen();
      const left = await all(next.leftAside());
      t.same(left.map((h) => h.digest).sort(), [kept, dropped].sort());
      for (const h of left) {
        if (h.digest === kept) await next.restore(h);
        else await next.purge(h);
      }
      t.equal(await read(next, kept), 'recorded again');
      t.equal(await next.stat(dropped), undefined);
      t.equal(await read(next, other), 'untouched');
      t.same(await all(next.leftAside()), []);
    });

    t.test('list pages through committed blobs in digest order with their sizes', async (t) => {
      const { store } = await open(t);
      const before = Date.now();
      const contents = ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff', 'ggggggg'];
      const digests = new Map<string, number>();
      for (const c of contents) digests.set(await put(store, c), c.length);
      digests.set(await put(store, 'of another algorithm', 'sha512'), 20);
      const gone = await put(store, 'set aside, not listed');
      await store.setAside(gone);
      const expected = [...digests.keys()].sort();

      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.list(after, 3);
        t.ok(page.length <= 3, 'at most limit');
        for (const b of page) {
          t.equal(b.size, digests.get(b.digest), `size of ${b.digest}`);
          t.ok(b.modifiedAt >= before - 2000 && b.modifiedAt <= Date.now() + 2000, 'modifiedAt is when it was written');
          seen.push(b.digest);
        }
        if (page.length < 3) break;
        after = page[page.length - 1]!.digest;
      }
      t.same(seen, expected, 'every committed blob once, in digest order');
      t.same(await store.list(expected[expected.length - 1], 3), [], 'nothing after the last');
      t.same((await store.list(expected[1], 2)).map((b) => b.digest), expected.slice(2, 4), 'after a digest: strictly greater');
      t.same(await store.list(undefined, 0), []);
    });
  });
}
