// Fill (src/proxy/blob-fill.ts) on its own: a fake FillFetcher (in-memory async iterables stand in
// for the upstream body) over a real FsBlobStore in a temporary directory.
import t, { type Test } from 'tap';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Fill, type FillFetcher, type FillOptions, type FillSource } from '../../src/proxy/blob-fill.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { tempDir } from '../helpers/server.js';
import { fullDiskStore } from '../helpers/full-disk.js';
import { wrapWriter } from '../helpers/wrap-writer.js';
import { bulkBytes, sha256 } from '../helpers/oci-layout.js';

const SIZE = 100_000;
t.setTimeout(60_000);

async function newStore(t: Test): Promise<{ store: FsBlobStore; root: string }> {
  const root = tempDir('wharf-fill-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return { store: await FsBlobStore.open(root), root };
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Yields `bytes` in `size`-byte chunks; optionally waits on `hold` before the end, or throws there. */
async function* chunks(bytes: Buffer, size: number, opts: { hold?: Promise<void>; fail?: Error } = {}): AsyncGenerator<Buffer> {
  for (let off = 0; off < bytes.length; off += size) {
    yield bytes.subarray(off, off + size);
    await sleep(0);
  }
  if (opts.hold) await opts.hold;
  if (opts.fail) throw opts.fail;
}

interface Collected {
  bytes: Buffer;
  error: Error | undefined;
  /** Bytes received so far (live while reading). */
  live: Buffer[];
  ended: boolean;
}

function collect(stream: Readable): Collected & { done: Promise<void> } {
  const out: Collected & { done: Promise<void> } = { bytes: Buffer.alloc(0), error: undefined, live: [], ended: false, done: Promise.resolve() };
  out.done = (async () => {
    try {
      for await (const c of stream) out.live.push(c as Buffer);
    } catch (err) {
      out.error = err as Error;
    }
    out.bytes = Buffer.concat(out.live);
    out.ended = true;
  })();
  return out;
}

const liveLength = (c: Collected): number => c.live.reduce((n, b) => n + b.length, 0);

// Returns as soon as `cond` holds; the deadline only bounds a failure, so it is generous: on a loaded
// machine (CI with two test jobs and other work) 3 s was not always enough for 100 kB to be written.
async function until(cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(5);
  }
  return cond();
}

/** Writers' files left in the store (a fill's among them). */
function writerFiles(root: string): string[] {
  return readdirSync(join(root, 'uploads'));
}

function options(overrides: Partial<FillOptions> = {}) {
  const commits: Array<[string, number]> = [];
  const events: Array<[string, Record<string, unknown>]> = [];
  const opts: FillOptions = {
    // What the ledger does first: place the bytes under their digest.
    onCommit: async (w, d, n) => {
      await w.commit(d);
      commits.push([d, n]);
    },
    onEvent: (e, detail) => events.push([e, detail]),
    ...overrides,
  };
  return { opts, commits, events };
}

async function stored(store: FsBlobStore, digest: string): Promise<Buffer | undefined> {
  if (!(await store.stat(digest))) return undefined;
  const parts: Buffer[] = [];
  for await (const c of await store.open(digest)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

t.test('bytes stream before verification, but the last byte is held back until the digest is verified', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('held', SIZE);
  const digest = sha256(content);
  const mid = gate();
  const end = gate();
  // The body gives half, pauses, gives the rest, then pauses before ending: every byte is written
  // but the body has not ended, so nothing can be verified yet.
  async function* body(): AsyncGenerator<Buffer> {
    yield content.subarray(0, SIZE / 2);
    await mid.wait;
    yield content.subarray(SIZE / 2);
    await end.wait;
  }
  const { opts, commits } = options();
  const fill = new Fill(digest, await store.writer(), async () => ({ start: 0, total: SIZE, body: body() }), opts);
  t.equal(await fill.sized(), SIZE, 'size known from the response');
  const c = collect(fill.stream());
  t.ok(await until(() => liveLength(c) === SIZE / 2 - 1), 'all but the last written byte stream before the end');
  mid.open();
  t.ok(await until(() => fill.written === SIZE), 'every byte written');
  await sleep(100);
  t.equal(liveLength(c), SIZE - 1, 'the last byte is held back while unverified');
  t.notOk(c.ended, 'the follower is still open');
  t.equal(fill.state, 'running');
  t.same(commits, []);
  end.open();
  await c.done;
  t.equal(c.error, undefined);
  t.ok(c.bytes.equals(content), 'then the whole verified blob');
  await fill.done;
  t.equal(fill.state, 'committed');
  t.same(commits, [[digest, SIZE]]);
  t.ok((await stored(store, digest))?.equals(content), 'committed bytes');
});

t.test('a digest mismatch destroys every follower stream and commits nothing', async (t) => {
  const { store, root } = await newStore(t);
  const content = bulkBytes('mismatch', SIZE);
  const digest = sha256(content);
  const wrong = Buffer.from(content);
  wrong[SIZE / 2] = wrong[SIZE / 2]! ^ 0xff;
  const end = gate();
  const { opts, commits, events } = options();
  const fill = new Fill(digest, await store.writer(), async () => ({ start: 0, total: SIZE, body: chunks(wrong, 8192, { hold: end.wait }) }), opts);
  await fill.sized();
  const followers = [
    collect(fill.stream()),
    collect(fill.stream()),
    collect(fill.stream({ start: 0, end: SIZE - 1 })),
    collect(fill.stream({ start: SIZE - 100, end: SIZE - 1 })),
  ];
  t.ok(await until(() => fill.written === SIZE), 'every (wrong) byte written');
  end.open();
  await Promise.all(followers.map((f) => f.done));
  await fill.done;
  followers.forEach((f, i) => {
    t.ok(f.error, `follower ${i} destroyed (${f.error?.message})`);
    t.notOk(f.bytes.length === (i === 3 ? 100 : SIZE), `follower ${i} did not get a complete body`);
  });
  t.equal(fill.state, 'failed');
  t.match(fill.error?.message, /hashes to/);
  t.same(commits, [], 'onCommit never called');
  t.equal(await store.stat(digest), undefined, 'nothing in the store');
  t.same(writerFiles(root), [], 'the temporary file is gone');
  t.ok(events.some(([e]) => e === 'failed'));
  const late = collect(fill.stream());
  await late.done;
  t.ok(late.error, 'a follower arriving after the failure is refused too');
  t.equal(late.bytes.length, 0);
});

t.test('resume after an error continues the hash from where it stopped', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('resume', SIZE);
  const digest = sha256(content);
  const offsets: number[] = [];
  const fetcher: FillFetcher = async (offset) => {
    offsets.push(offset);
    if (offsets.length === 1) return { start: 0, total: SIZE, body: chunks(content.subarray(0, 30_000), 7000, { fail: new Error('ECONNRESET') }) };
    return { start: offset, total: SIZE, body: chunks(content.subarray(offset), 5000) };
  };
  const { opts, commits, events } = options();
  const fill = new Fill(digest, await store.writer(), fetcher, opts);
  const c = collect(fill.stream());
  await fill.done;
  await c.done;
  t.same(offsets, [0, 30_000], 'resumed at the byte it had reached');
  t.equal(fill.state, 'committed', fill.error?.message ?? '');
  t.same(commits, [[digest, SIZE]]);
  t.ok((await stored(store, digest))?.equals(content), 'stored bytes are the blob');
  t.ok(c.bytes.equals(content), 'the follower got the blob');
  t.match(events.find(([e]) => e === 'resumed')?.[1], { at: 30_000 });
});

t.test('a body that ends early without an error is resumed too', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('short', SIZE);
  const digest = sha256(content);
  const offsets: number[] = [];
  const fetcher: FillFetcher = async (offset) => {
    offsets.push(offset);
    const end = offsets.length === 1 ? 12_345 : SIZE;
    return { start: offset, total: SIZE, body: chunks(content.subarray(offset, end), 4096) };
  };
  const { opts } = options();
  const fill = new Fill(digest, await store.writer(), fetcher, opts);
  await fill.done;
  t.same(offsets, [0, 12_345]);
  t.equal(fill.state, 'committed', fill.error?.message ?? '');
  t.ok((await stored(store, digest))?.equals(content));
});

t.test('a 200 after a partial response skips the bytes already written', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('skip', SIZE);
  const digest = sha256(content);
  const offsets: number[] = [];
  const fetcher: FillFetcher = async (offset): Promise<FillSource> => {
    offsets.push(offset);
    if (offsets.length === 1) return { start: 0, total: SIZE, body: chunks(content.subarray(0, 30_001), 7000, { fail: new Error('socket hang up') }) };
    // The upstream ignored Range: the whole blob again, in chunks that straddle the resume point.
    return { start: 0, total: SIZE, body: chunks(content, 4096) };
  };
  const { opts, commits } = options();
  const fill = new Fill(digest, await store.writer(), fetcher, opts);
  const c = collect(fill.stream());
  await fill.done;
  await c.done;
  t.same(offsets, [0, 30_001]);
  t.equal(fill.state, 'committed', fill.error?.message ?? '');
  t.equal(fill.written, SIZE, 'no byte written twice');
  t.same(commits, [[digest, SIZE]]);
  t.ok((await stored(store, digest))?.equals(content));
  t.ok(c.bytes.equals(content));
});

t.test('resumes run out: the fill fails and commits nothing', async (t) => {
  const { store, root } = await newStore(t);
  const content = bulkBytes('exhaust', SIZE);
  const digest = sha256(content);
  let calls = 0;
  const fetcher: FillFetcher = async (offset) => {
    calls++;
    return { start: offset, total: SIZE, body: chunks(content.subarray(offset, offset + 1000), 500, { fail: new Error('reset') }) };
  };
  const { opts, commits } = options({ maxResumes: 2 });
  const fill = new Fill(digest, await store.writer(), fetcher, opts);
  const c = collect(fill.stream());
  await fill.done;
  await c.done;
  t.equal(calls, 3, 'one try and two resumes');
  t.equal(fill.state, 'failed');
  t.ok(c.error, 'follower destroyed');
  t.ok(c.bytes.length < SIZE);
  t.same(commits, []);
  t.equal(await store.stat(digest), undefined);
  t.same(writerFiles(root), []);
});

t.test('an upstream that sends more than the announced size fails the fill', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('more', SIZE);
  const digest = sha256(content);
  const { opts, commits } = options();
  const fill = new Fill(digest, await store.writer(), async () => ({ start: 0, total: SIZE - 10, body: chunks(content, 8192) }), opts);
  const c = collect(fill.stream());
  await fill.done;
  await c.done;
  t.equal(fill.state, 'failed');
  t.ok(c.error);
  t.same(commits, []);
  t.equal(await store.stat(digest), undefined);
});

t.test('size unknown (no Content-Length): clients still get the blob once it is verified', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('chunked', SIZE);
  const digest = sha256(content);
  const { opts } = options();
  const fill = new Fill(digest, await store.writer(), async () => ({ start: 0, body: chunks(content, 8192) }), opts);
  const size = await fill.sized();
  t.equal(size, SIZE, 'sized() resolves with the verified size');
  // ProxyBlobs.read does exactly this: await sized(), then stream().
  const c = collect(fill.stream());
  await c.done;
  t.equal(c.error, undefined, `the stream opened after sized() works (${c.error?.message})`);
  t.ok(c.bytes.equals(content), 'and has the blob');
});

t.test('a follower that asks for the stream just as the fill commits still gets the blob', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('late', 1000);
  const digest = sha256(content);
  const commit = gate();
  const { opts } = options({
    onCommit: async (w, d) => {
      await w.commit(d);
      await commit.wait;
    },
  });
  const fill = new Fill(digest, await store.writer(), async () => ({ start: 0, total: 1000, body: chunks(content, 1000) }), opts);
  // The bytes are in place while onCommit records them; the fill is still 'running' (and still in
  // the FillTable), so a new request joins it here.
  t.ok(await until(async () => (await store.stat(digest)) !== undefined), 'bytes in place, onCommit pending');
  t.equal(fill.state, 'running');
  const c = collect(fill.stream());
  await sleep(50);
  commit.open();
  await c.done;
  await fill.done;
  t.equal(c.error, undefined, `follower joined during commit (${c.error?.message})`);
  t.ok(c.bytes.equals(content));
});

t.test('followers behind the memory window share what is read from the file: a herd reads each block about once', async (t) => {
  const { store } = await newStore(t);
  const MiB = 1024 * 1024;
  const content = bulkBytes('herd', 12 * MiB + 12345);
  const digest = sha256(content);
  const end = gate();
  let fileBytes = 0;
  const writer = await store.writer();
  const counted = {
    ...wrapWriter(writer, {}),
    reader: async () => {
      const r = await writer.reader();
      return {
        read: async (position: number, length: number, into?: Buffer) => {
          const b = await r.read(position, length, into);
          fileBytes += b.length;
          return b;
        },
        close: () => r.close(),
      };
    },
  };
  const { opts, commits } = options();
  const fill = new Fill(digest, counted, async () => ({ start: 0, total: content.length, body: chunks(content, 256 * 1024, { hold: end.wait }) }), opts);
  // All but the tail is on disk and out of the 4 MiB window before the herd arrives.
  t.ok(await until(() => fill.written >= 10 * MiB), 'most bytes written');
  const herd = Array.from({ length: 8 }, () => collect(fill.stream()));
  end.open();
  await Promise.all(herd.map((c) => c.done));
  await fill.done;
  t.same(commits, [[digest, content.length]]);
  for (const [i, c] of herd.entries()) {
    t.equal(c.error, undefined, `follower ${i}: ${c.error?.message}`);
    t.ok(c.bytes.equals(content), `follower ${i} got the blob`);
  }
  // Unshared, eight followers would read ~8 x 12 MiB; shared, a block is read again only when it
  // was read short (at the growing end) or was evicted before a straggler got to it.
  t.ok(fileBytes <= 3 * content.length, `file bytes read: ${fileBytes} for ${content.length}`);
});

t.test('a refusal while resuming (429, 404) ends the fill at once instead of retrying', async (t) => {
  for (const status of [429, 404]) {
    const { store, root } = await newStore(t);
    const content = bulkBytes(`refused-${status}`, SIZE);
    const digest = sha256(content);
    let calls = 0;
    const fetcher: FillFetcher = async () => {
      calls++;
      if (calls === 1) return { start: 0, total: SIZE, body: chunks(content.subarray(0, 30_000), 10_000, { fail: new Error('ECONNRESET') }) };
      throw Object.assign(new Error(`upstream answered ${status}`), { status });
    };
    const { opts, commits } = options();
    const fill = new Fill(digest, await store.writer(), fetcher, opts);
    await fill.done;
    t.equal(fill.state, 'failed', `${status}: the fill failed`);
    t.equal(calls, 2, `${status}: one resume attempt, no retry storm`);
    t.match(fill.error?.message, new RegExp(String(status)));
    t.same(commits, []);
    t.same(writerFiles(root), [], `${status}: nothing left behind`);
  }
});

t.test('a 5xx while resuming is retried like a dropped connection', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('retry-5xx', SIZE);
  const digest = sha256(content);
  let calls = 0;
  const fetcher: FillFetcher = async (offset) => {
    calls++;
    if (calls === 1) return { start: 0, total: SIZE, body: chunks(content.subarray(0, 30_000), 10_000, { fail: new Error('ECONNRESET') }) };
    if (calls === 2) throw Object.assign(new Error('upstream answered 503'), { status: 503 });
    return { start: offset, total: SIZE, body: chunks(content.subarray(offset), 10_000) };
  };
  const { opts, commits } = options();
  const fill = new Fill(digest, await store.writer(), fetcher, opts);
  await fill.done;
  t.equal(fill.state, 'committed');
  t.equal(calls, 3);
  t.same(commits, [[digest, SIZE]]);
  t.ok((await stored(store, digest))?.equals(content));
});

t.test('a failed write (a full disk) stops reading from the upstream at once and cuts every follower', async (t) => {
  const root = tempDir('wharf-fill-full-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const disk = await fullDiskStore(root);
  disk.left = 1024 * 1024;
  // A 256 MiB upstream body (one buffer, sent again and again), counting what the fill takes of it.
  const CHUNK = 64 * 1024;
  const TOTAL = 256 * 1024 * 1024;
  const piece = bulkBytes('full', CHUNK);
  let pulled = 0;
  let closed = false;
  async function* body(): AsyncGenerator<Buffer> {
    try {
      for (let off = 0; off < TOTAL; off += CHUNK) {
        pulled += CHUNK;
        yield piece;
      }
    } finally {
      closed = true;
    }
  }
  const { opts, commits, events } = options();
  const fill = new Fill(sha256(piece), await disk.store.writer(), async () => ({ start: 0, total: TOTAL, body: body() }), opts);
  const followers = [collect(fill.stream()), collect(fill.stream())];
  await fill.done;
  await Promise.all(followers.map((f) => f.done));
  t.equal(fill.state, 'failed');
  t.match(fill.error, { code: 'STORAGE_FULL', status: 507 }, 'the cause is named: storage full');
  t.match(fill.error?.message, /storage is full \(ENOSPC\)/);
  t.ok(disk.refused >= 1, 'a write was refused');
  t.ok(closed, 'the upstream body was closed');
  t.ok(pulled <= 16 * 1024 * 1024, `reading stopped soon after the failed write (${pulled} of ${TOTAL} bytes taken)`);
  for (const f of followers) t.ok(f.error, 'every follower is cut');
  t.same(commits, []);
  t.match(events.at(-1), ['failed', { error: /storage is full/ }]);
  t.same(writerFiles(root), [], 'nothing left behind');
});

t.test('an upstream that trickles below the minimum rate ends the fill and frees its followers', async (t) => {
  const { store, root } = await newStore(t);
  let sent = 0;
  let closed = false;
  // One byte every 10 ms of a 10 GiB blob: never idle long enough for an idle timeout.
  async function* trickle(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        sent++;
        yield Buffer.from('x');
        await sleep(10);
      }
    } finally {
      closed = true;
    }
  }
  const { opts, commits } = options({ minRate: { bytesPerSecond: 1000, windowMs: 200 } });
  const fill = new Fill(sha256(Buffer.from('x')), await store.writer(), async () => ({ start: 0, total: 10 * 1024 ** 3, body: Readable.from(trickle()) }), opts);
  const follower = collect(fill.stream());
  await fill.done;
  await follower.done;
  t.equal(fill.state, 'failed');
  t.match(fill.error?.message, /below the minimum rate of 1000 bytes\/s/);
  t.ok(follower.error, 'the follower is cut');
  t.ok(closed, 'the upstream body was closed');
  const at = sent;
  await sleep(50);
  t.equal(sent, at, 'nothing more is read');
  t.same(commits, []);
  t.same(writerFiles(root), []);
});

t.test('an upstream at or above the minimum rate is not cut', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('steady', 40_000);
  const digest = sha256(content);
  async function* steady(): AsyncGenerator<Buffer> {
    for (let off = 0; off < content.length; off += 1000) {
      yield content.subarray(off, off + 1000);
      await sleep(5);
    }
  }
  // About 200 KB/s against a minimum of 1 KB/s over 50 ms windows: many windows, none below.
  const { opts, commits } = options({ minRate: { bytesPerSecond: 1000, windowMs: 50 } });
  const fill = new Fill(digest, await store.writer(), async () => ({ start: 0, total: content.length, body: Readable.from(steady()) }), opts);
  await fill.done;
  t.equal(fill.state, 'committed', fill.error?.message ?? 'committed');
  t.same(commits, [[digest, content.length]]);
});

t.test('a slow disk after the last byte arrived does not count against the upstream\'s minimum rate', async (t) => {
  const { store } = await newStore(t);
  const content = bulkBytes('slow-disk', 20_000);
  const digest = sha256(content);
  const w = await store.writer();
  // Every write takes 200 ms: four 50 ms windows with no new upstream bytes while the disk catches up.
  const slow = wrapWriter(w, { write: async (b) => (await sleep(200), w.write(b)) });
  const { opts, commits } = options({ minRate: { bytesPerSecond: 1000, windowMs: 50 } });
  const fill = new Fill(digest, slow, async () => ({ start: 0, total: content.length, body: chunks(content, 10_000) }), opts);
  await fill.done;
  t.equal(fill.state, 'committed', fill.error?.message ?? 'committed');
  t.same(commits, [[digest, content.length]]);
});

t.test('a write that fails for another reason (EIO) ends the fill at once as our fault, not the upstream\'s', async (t) => {
  const { store, root } = await newStore(t);
  const content = bulkBytes('eio', SIZE);
  const broken = wrapWriter(await store.writer(), {
    write: async () => Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' })),
  });
  let calls = 0;
  const { opts, commits } = options();
  const fill = new Fill(sha256(content), broken, async () => (calls++, { start: 0, total: SIZE, body: chunks(content, 1000) }), opts);
  await fill.done;
  t.equal(fill.state, 'failed');
  t.match(fill.error, { code: 'INTERNAL_ERROR', message: /writing blob .* failed: EIO/ });
  t.equal(calls, 1, 'not resumed: the upstream did nothing wrong');
  t.same(commits, []);
  t.same(writerFiles(root), []);
});
