// The BlobStore contract: every driver (the filesystem now, object storage next) must pass this suite.
// Run it from a driver's test file: blobStoreContract(t, 'fs', (t) => a fresh, empty store and a way
// to open another instance over the same storage). Each subtest gets its own store.
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BlobStore, BlobWriter } from '../../src/storage/blob-store.js';
import { BlobNotFoundError, DigestMismatchError, SizeMismatchError } from '../../src/storage/storage-errors.js';
import type { TestObject } from './contract-helpers.js';

export interface BlobStoreFixture {
  store: BlobStore;
  /** Another instance over the same storage (a restart, another process). */
  reopen(): Promise<BlobStore>;
}

/** Opens a fresh, empty store for one subtest and removes it in that subtest's teardown. */
export type OpenBlobStore = (t: TestObject) => Promise<BlobStoreFixture>;

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** `n` bytes that differ from one `seed` to another and do not repeat within a blob. */
function bytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < n; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function committed(store: BlobStore, content: Buffer): Promise<string> {
  const digest = sha256(content);
  const w = await store.writer();
  await w.write([content]);
  await w.commit(digest);
  await w.cancel();
  return digest;
}

/** A stream that gives `head`, then fails. */
function failing(head: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield head;
      await sleep(1);
      throw new Error('the client went away');
    })(),
    { objectMode: false },
  );
}

async function ids(iterable: AsyncIterable<{ id: string; session: boolean }>): Promise<Array<{ id: string; session: boolean }>> {
  const out: Array<{ id: string; session: boolean }> = [];
  for await (const w of iterable) out.push(w);
  return out;
}

export async function blobStoreContract(t: TestObject, name: string, open: OpenBlobStore): Promise<void> {
  await t.test(`BlobStore contract: ${name}`, async (t) => {
    t.test('a committed blob: stat, open whole and by ranges including the first and last byte', async (t) => {
      const { store } = await open(t);
      const content = bytes('ranges', 100_000);
      const before = Date.now();
      const digest = await committed(store, content);
      const stat = await store.stat(digest);
      t.equal(stat?.size, content.length);
      t.ok(stat && stat.modifiedAt >= before - 2000 && stat.modifiedAt <= Date.now() + 2000, 'modifiedAt is when it was written');
      t.ok((await readAll(await store.open(digest))).equals(content), 'whole');
      t.ok((await readAll(await store.open(digest, { start: 0, end: 0 }))).equals(content.subarray(0, 1)), 'first byte');
      const last = content.length - 1;
      t.ok((await readAll(await store.open(digest, { start: last, end: last }))).equals(content.subarray(last)), 'last byte');
      t.ok((await readAll(await store.open(digest, { start: 1000, end: 65_535 }))).equals(content.subarray(1000, 65_536)), 'a middle range');
      t.ok((await readAll(await store.open(digest, { start: 0, end: last }))).equals(content), 'the whole as a range');
      const absent = sha256(Buffer.from('never written'));
      t.equal(await store.stat(absent), undefined);
      await t.rejects(store.open(absent), BlobNotFoundError);
      await t.rejects(store.open(absent, { start: 0, end: 0 }), BlobNotFoundError);
    });

    t.test('an empty blob', async (t) => {
      const { store } = await open(t);
      const digest = await committed(store, Buffer.alloc(0));
      t.equal((await store.stat(digest))?.size, 0);
      t.equal((await readAll(await store.open(digest))).length, 0);
    });

    t.test('concurrent writers of one digest both commit: one complete blob, and readers never see part of it', async (t) => {
      const { store } = await open(t);
      const content = bytes('concurrent', 3 * 1024 * 1024);
      const digest = sha256(content);
      const writers = [await store.writer(), await store.writer()];
      t.not(writers[0]?.id, writers[1]?.id, 'each writer has its own id');
      const PIECE = 256 * 1024;
      for (let at = 0; at < content.length; at += PIECE) {
        for (const w of writers) await w.write([content.subarray(at, at + PIECE)]);
        t.equal(await store.stat(digest), undefined, 'nothing visible while written');
      }
      // Readers poll the digest the whole time the writers commit.
      let done = false;
      const partial: number[] = [];
      const reader = (async () => {
        while (!done) {
          const stat = await store.stat(digest);
          if (stat) {
            if (stat.size !== content.length) partial.push(stat.size);
            const got = await readAll(await store.open(digest)).catch(() => undefined);
            if (got && !got.equals(content)) partial.push(got.length);
          }
          await sleep(0);
        }
      })();
      const stats = await Promise.all(writers.map((w) => w.commit(digest)));
      await Promise.all(writers.map((w) => w.cancel()));
      done = true;
      await reader;
      t.same(partial, [], 'every read saw the whole blob or nothing');
      t.same(stats.map((s) => s.size), [content.length, content.length], 'both commits succeed');
      t.equal((await store.stat(digest))?.size, content.length);
      t.ok((await readAll(await store.open(digest))).equals(content), 'one complete blob');
    });

    t.test('a reader follows a growing writer and stays valid after the commit', async (t) => {
      const { store } = await open(t);
      const content = bytes('follow', 200_000);
      const digest = sha256(content);
      const w = await store.writer();
      const early = await w.reader();
      t.equal((await early.read(0, 10)).length, 0, 'nothing written yet');
      await w.write([content.subarray(0, 50_000), content.subarray(50_000, 80_000)]);
      t.equal(w.size, 80_000);
      t.ok((await early.read(0, 80_000)).equals(content.subarray(0, 80_000)), 'reads what is written');
      t.ok((await early.read(70_000, 50_000)).equals(content.subarray(70_000, 80_000)), 'fewer bytes at the end');
      await w.write([content.subarray(80_000)]);
      t.ok((await early.read(80_000, 200_000)).equals(content.subarray(80_000)), 'more as it grows');
      const into = Buffer.alloc(4096, 0xee);
      const got = await early.read(1000, 4096, into);
      t.ok(got.equals(content.subarray(1000, 5096)), 'read into a given buffer: the same bytes');
      t.equal(got.buffer, into.buffer, 'in that buffer, not a new one');
      t.ok((await early.read(199_000, 4096, into)).equals(content.subarray(199_000)), 'fewer at the end, into the buffer too');
      const late = await w.reader();
      t.equal((await w.commit(digest)).size, content.length);
      t.ok((await late.read(0, content.length)).equals(content), 'a reader opened before the commit reads after it');
      await w.cancel();
      t.ok((await early.read(123, 1000)).equals(content.subarray(123, 1123)), 'and after the writer is cancelled');
      const after = await w.reader();
      t.ok((await after.read(0, content.length)).equals(content), 'a reader opened after the cancel reads the committed blob');
      await Promise.all([early.close(), late.close(), after.close()]);
      await t.rejects(w.write([Buffer.from('more')]), 'no write after the commit');
    });

    t.test('a wrong digest: DigestMismatchError and nothing visible under either digest', async (t) => {
      const { store } = await open(t);
      const content = bytes('wrong', 10_000);
      const actual = sha256(content);
      const declared = sha256(Buffer.from('something else'));
      const w = await store.writer();
      await w.append(Readable.from([content]));
      const err = await w.commit(declared).then(() => undefined, (e: unknown) => e);
      t.ok(err instanceof DigestMismatchError, 'DigestMismatchError');
      t.match(err, { expected: declared, actual });
      t.equal(await store.stat(declared), undefined, 'not under the declared digest');
      t.equal(await store.stat(actual), undefined, 'not under the actual one');
      await t.rejects(store.open(declared), BlobNotFoundError);
      await t.rejects(w.commit(declared, { knownDigest: declared.replace(/.$/, '0') }), DigestMismatchError, 'a known digest that is not the declared one');
      t.equal(await store.stat(declared), undefined);
      await w.cancel();
      t.equal(await store.stat(actual), undefined);
    });

    t.test('commit cuts to `size` first; commit again is harmless; cancel keeps the committed blob', async (t) => {
      const { store } = await open(t);
      const content = bytes('cut', 5000);
      const digest = sha256(content);
      const w = await store.writer();
      await w.write([content, Buffer.from('bytes of a chunk cut short')]);
      t.equal((await w.commit(digest, { size: content.length, knownDigest: digest })).size, content.length);
      t.equal(w.size, content.length);
      t.equal((await w.commit(digest)).size, content.length, 'a second commit succeeds');
      await w.cancel();
      await w.cancel();
      t.ok((await readAll(await store.open(digest))).equals(content), 'the blob stays after cancel, which is idempotent');
      const other = bytes('other algorithm', 3000);
      const w2 = await store.writer();
      await w2.write([other]);
      const sha512 = `sha512:${'0'.repeat(128)}`;
      t.equal((await w2.commit(sha256(other), { knownDigest: sha512 })).size, 3000, 'a known digest of another algorithm is not used: the bytes are hashed');
      await w2.cancel();
    });

    t.test('session writers persist: resumed by another instance at their size', async (t) => {
      const fixture = await open(t);
      const { store } = fixture;
      const content = bytes('session', 300_000);
      const digest = sha256(content);
      const session = randomUUID();
      const w = await store.writer(session);
      t.equal(w.id, session);
      t.equal(await w.append(Readable.from([content.subarray(0, 100_000)])), 100_000);
      const other = await fixture.reopen();
      const resumed = await other.resume(session);
      t.ok(resumed, 'found by another instance');
      if (!resumed) return;
      t.equal(resumed.id, session);
      t.equal(resumed.size, 100_000, 'at its stored size');
      t.ok((await readAll(resumed.read())).equals(content.subarray(0, 100_000)), 'its bytes');
      t.ok((await readAll(resumed.read(10))).equals(content.subarray(0, 10)), 'the first bytes');
      t.equal((await readAll(resumed.read(0))).length, 0);
      let seen = 0;
      t.equal(await resumed.append(Readable.from([content.subarray(100_000)]), { onData: (c) => void (seen += c.length), length: 200_000 }), content.length);
      t.equal(seen, 200_000, 'onData saw every byte');
      await resumed.commit(digest);
      await resumed.cancel();
      t.equal((await store.stat(digest))?.size, content.length, 'committed, seen by the first instance');
      t.equal(await store.resume(session), undefined, 'no writer left after the cancel');
      t.equal(await other.resume(randomUUID()), undefined, 'an unknown session');
      t.equal(await other.resume('not-a-session'), undefined);
    });

    t.test('a failed append gives its bytes back; truncate cuts back', async (t) => {
      const { store } = await open(t);
      const head = bytes('head', 1000);
      const w = await store.writer(randomUUID());
      await w.append(Readable.from([head]));
      await t.rejects(w.append(failing(bytes('lost', 5000))), /went away/, 'a source that fails');
      t.equal(w.size, 1000, 'size unchanged');
      const longer = await w.append(Readable.from([bytes('long', 600)]), { length: 500 }).then(() => undefined, (e: unknown) => e);
      t.ok(longer instanceof SizeMismatchError, 'more bytes than declared: SizeMismatchError');
      const shorter = await w.append(Readable.from([bytes('short', 400)]), { length: 500 }).then(() => undefined, (e: unknown) => e);
      t.match(shorter, { expected: 500, received: 400 }, 'fewer bytes than declared: SizeMismatchError');
      t.ok(shorter instanceof SizeMismatchError);
      t.equal(w.size, 1000);
      t.ok((await readAll(w.read())).equals(head), 'only the bytes before the failures');
      const resumed = await store.resume(w.id);
      t.equal(resumed?.size, 1000, 'stored size too');
      const tail = bytes('tail', 700);
      t.equal(await w.append(Readable.from([tail]), { length: 700 }), 1700, 'appends go on where they were');
      await w.truncate(1000);
      t.equal(w.size, 1000);
      t.equal((await store.resume(w.id))?.size, 1000, 'cut in storage');
      await w.write([tail]);
      const digest = sha256(Buffer.concat([head, tail]));
      t.equal((await w.commit(digest)).size, 1700);
      await w.cancel();
    });

    t.test('cancel is idempotent and drops the bytes; a cancelled writer does not commit', async (t) => {
      const { store } = await open(t);
      const content = bytes('cancel', 1000);
      const session = randomUUID();
      const w = await store.writer(session);
      await w.write([content]);
      await w.cancel();
      await w.cancel();
      t.equal(await store.resume(session), undefined, 'the session writer is gone');
      await t.rejects(w.commit(sha256(content)), 'no commit after cancel');
      t.equal(await store.stat(sha256(content)), undefined);
      await t.rejects(w.write([content]), 'no write after cancel');
    });

    t.test('stale writers: listed by age, removed by id', async (t) => {
      const { store } = await open(t);
      const session = randomUUID();
      const s = await store.writer(session);
      const a = await store.writer();
      await s.write([Buffer.from('session bytes')]);
      await a.write([Buffer.from('anonymous bytes')]);
      t.same(await ids(store.staleWriters(0)), [], 'none written before the epoch');
      const stale = await ids(store.staleWriters(Date.now() + 60_000));
      t.same(
        stale.sort((x, y) => x.id.localeCompare(y.id)),
        [{ id: session, session: true }, { id: a.id, session: false }].sort((x, y) => x.id.localeCompare(y.id)),
        'both, the session marked as one',
      );
      await store.removeWriter(session);
      await store.removeWriter(a.id);
      await store.removeWriter(a.id);
      t.equal(await store.resume(session), undefined, 'removed');
      t.same(await ids(store.staleWriters(Date.now() + 60_000)), [], 'nothing left');
      const w: BlobWriter = await store.writer();
      await w.cancel();
      t.same(await ids(store.staleWriters(Date.now() + 60_000)), [], 'a cancelled writer is not listed');
    });
  });
}
