// Changes to tags and manifests, told to every node sharing the PostgreSQL database, so that what a
// node holds in memory (hot manifests, tag resolutions) follows a push, a tag deletion or a sweep
// made on another node. The writer NOTIFYs inside the transaction that makes the change, so the
// message goes out when (and only if) it commits; each node LISTENs on one connection of its own.
//
// Nothing is queried per request: a node's caches stay in front of the database and are dropped
// entry by entry as messages arrive. The messages of a node's own writes are ignored (it has
// updated its caches already). When the listening connection is lost, messages sent meanwhile are
// lost with it: once it listens again, subscribers are told that everything may be stale. While it
// is down nothing is dropped, so hot manifests stay served through a database outage.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { MetadataChange, MetadataChangeFeed } from './metadata-changes.js';

/** A connection in a transaction (postgres-database.ts's Queryable, named here without importing it). */
interface InTransaction {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** How long a lost listening connection waits before it tries again. */
const RETRY_MS = 500;

interface Message {
  /** The node that made the change. */
  n: string;
  c: MetadataChange;
}

export class PostgresChangeFeed implements MetadataChangeFeed {
  /** This process's id in the messages it sends. */
  readonly node = randomBytes(8).toString('hex');
  private readonly subscribers = new Set<(change: MetadataChange) => void>();
  private listener: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  /** Messages may have been sent while nobody listened here (a lost connection, a failed attempt). */
  private gap = false;
  private closed = false;

  /**
   * @param config how to open the listening connection (the pool's settings)
   * @param channel the channel of this database and schema (nodes on another schema are not told)
   */
  constructor(
    private readonly config: pg.ClientConfig,
    readonly channel: string,
  ) {}

  /** Sends `changes` when the transaction `q` runs in commits. */
  async notify(q: InTransaction, changes: MetadataChange[]): Promise<void> {
    if (changes.length === 0) return;
    const payloads = changes.map((c) => JSON.stringify({ n: this.node, c } satisfies Message));
    await q.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [this.channel, payloads]);
  }

  subscribe(fn: (change: MetadataChange) => void): () => void {
    this.subscribers.add(fn);
    if (!this.listener && !this.retry) void this.listen();
    return () => this.subscribers.delete(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const client = this.listener;
    this.listener = undefined;
    await client?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    this.retry = undefined;
    if (this.closed) return;
    const client = new pg.Client(this.config);
    this.listener = client;
    client.on('notification', (m) => {
      if (m.channel === this.channel && m.payload !== undefined) this.receive(m.payload);
    });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replaceAll('"', '""')}"`);
    } catch {
      this.lost(client);
      return;
    }
    if (this.listener !== client) return;
    // Listening again after a loss: what was sent in between never arrived.
    if (this.gap) this.emit({ kind: 'all' });
    this.gap = false;
  }

  private lost(client: pg.Client): void {
    if (this.listener !== client) return;
    this.listener = undefined;
    this.gap = true;
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.retry = setTimeout(() => void this.listen(), RETRY_MS);
    this.retry.unref();
  }

  private receive(payload: string): void {
    let message: Message;
    try {
      message = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    if (message.n !== this.node) this.emit(message.c);
  }

  private emit(change: MetadataChange): void {
    for (const fn of this.subscribers) fn(change);
  }
}
