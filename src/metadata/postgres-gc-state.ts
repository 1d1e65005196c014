// The collector's queries on PostgreSQL (GcState, see gc-state.ts and DESIGN.md "Garbage collection
// and eviction"), the statements of sqlite-gc-state.ts in PostgreSQL's dialect.
//
// Mark keeps its sets in temporary tables, which live in one connection: the mark takes a connection
// of its own and holds it until endMark. Several nodes write at once, so where SQLite's single writer
// made "check, then delete" atomic, each sweep here locks the row FOR UPDATE first and deletes it in a
// later statement that re-checks every condition: in READ COMMITTED a statement sees what committed
// before it started, so a writer that locked the row (a manifest put verifying its content, a tag
// pointing at a manifest, a pull refreshing a blob) has either committed and is seen, or waits for
// the sweep and then finds the row gone.
import type { GcDeadManifest, GcMarkOptions, GcMarkResult, GcRule, GcState } from './gc-state.js';
import { DB_NOW_MS, named, type PostgresDatabase, type Queryable, type Session } from './postgres-database.js';

const LOCK = 'gc';

/** A row is fresh (live by grace) when created or touched at or after the cutoff. */
const FRESH = (alias: string): string => `GREATEST(${alias}.created_at, ${alias}.last_access_at) >= @cutoff`;

/** Deletes the blob rows of @digests (locked beforehand) that, at that instant, nothing holds and that are not fresh. */
const SWEEP_BLOBS = `DELETE FROM blobs AS b WHERE b.digest = ANY(@digests::text[]) AND NOT (${FRESH('b')})
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.ref_digest = b.digest AND r.kind = 'blob')
  AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)
  AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = b.digest)
 RETURNING b.digest, b.size`;

const TEMP_TABLES = [
  'CREATE TEMP TABLE IF NOT EXISTS gc_live (repo TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, PRIMARY KEY (repo, digest))',
  'CREATE INDEX IF NOT EXISTS gc_live_digest ON gc_live (digest)',
  `CREATE TEMP TABLE IF NOT EXISTS gc_dead (
    repo TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, rule TEXT NOT NULL, access BIGINT NOT NULL,
    PRIMARY KEY (repo, digest))`,
  'CREATE TEMP TABLE IF NOT EXISTS gc_live_blobs (digest TEXT COLLATE "C" PRIMARY KEY)',
  'CREATE TEMP TABLE IF NOT EXISTS gc_active (digest TEXT COLLATE "C" PRIMARY KEY)',
  'TRUNCATE gc_live, gc_dead, gc_live_blobs, gc_active',
];

export class PostgresGcState implements GcState {
  /** The connection that holds the last mark's temporary tables, until endMark. */
  private marked: Session | undefined;

  constructor(private readonly db: PostgresDatabase) {}

  // The lock's expiry is computed and compared on the database's clock (as fill leases are): the
  // nodes' clocks need not agree, and a node whose clock runs behind cannot take a live lock for
  // expired, nor one whose clock runs ahead hold an expired one for longer.
  async acquireLock(holder: string, ttlMs: number): Promise<boolean> {
    // One statement: ON CONFLICT locks the row and evaluates WHERE on its latest version, so two
    // nodes cannot both take an expired lock.
    const r = await this.db.query(
      `INSERT INTO gc_lock (name, holder, expires_at) VALUES ($1, $2, ${DB_NOW_MS} + $3)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE gc_lock.expires_at < ${DB_NOW_MS} OR gc_lock.holder = excluded.holder`,
      [LOCK, holder, ttlMs],
    );
    return r.rowCount! > 0;
  }

  async renewLock(holder: string, ttlMs: number): Promise<boolean> {
    return (await this.db.query(`UPDATE gc_lock SET expires_at = ${DB_NOW_MS} + $1 WHERE name = $2 AND holder = $3`, [ttlMs, LOCK, holder])).rowCount! > 0;
  }

  async lockHolder(): Promise<string | undefined> {
    return (await this.db.query<{ holder: string }>('SELECT holder FROM gc_lock WHERE name = $1', [LOCK])).rows[0]?.holder;
  }

  async takeOverLock(from: string, holder: string, ttlMs: number): Promise<boolean> {
    const r = await this.db.query(`UPDATE gc_lock SET holder = $1, expires_at = ${DB_NOW_MS} + $2 WHERE name = $3 AND holder = $4`, [holder, ttlMs, LOCK, from]);
    return r.rowCount! > 0;
  }

  async releaseLock(holder: string): Promise<void> {
    await this.db.query('DELETE FROM gc_lock WHERE name = $1 AND holder = $2', [LOCK, holder]);
  }

  async mark(opts: GcMarkOptions): Promise<GcMarkResult> {
    // Without statementTimeout: mark reads whole tables, which may take longer than any request may.
    this.marked ??= await this.db.session({ unbounded: true });
    const s = this.marked;
    const run = (sql: string, params: Record<string, unknown> = {}) => s.query(...named(sql, params));
    for (const sql of TEMP_TABLES) await s.query(sql);
    const p = { cutoff: opts.cutoff };
    // 1. Cached manifests not pulled since ageCutoff are evicted, tagged or not (grace still applies).
    if (opts.ageCutoff !== undefined) {
      await run(
        `INSERT INTO gc_dead (repo, digest, rule, access)
         SELECT m.repo, m.digest, 'age', m.last_access_at FROM manifests m
          WHERE NOT m.local AND GREATEST(m.created_at, m.last_access_at) < @ageCutoff AND NOT (${FRESH('m')})`,
        { ...p, ageCutoff: opts.ageCutoff },
      );
    }
    // 2. Roots: tagged, fresh, or (unless deleteUntagged) any manifest whose last tag was not
    // deleted through the API — evicted ones excepted.
    await run(
      `INSERT INTO gc_live (repo, digest)
       SELECT m.repo, m.digest FROM manifests m
        WHERE NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = m.repo AND d.digest = m.digest)
          AND ((@keepUntagged AND m.released_at IS NULL) OR ${FRESH('m')}
               OR EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest))`,
      { ...p, keepUntagged: !opts.deleteUntagged },
    );
    // 3. Closure: children of a live index and referrers of a live subject, in the same repository.
    for (;;) {
      const children = await s.query(
        `INSERT INTO gc_live (repo, digest)
         SELECT DISTINCT m.repo, m.digest FROM gc_live l
           JOIN manifest_refs r ON r.repo = l.repo AND r.manifest_digest = l.digest AND r.kind = 'manifest'
           JOIN manifests m ON m.repo = r.repo AND m.digest = r.ref_digest
          WHERE NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = m.repo AND d.digest = m.digest)
         ON CONFLICT DO NOTHING`,
      );
      const referrers = await s.query(
        `INSERT INTO gc_live (repo, digest)
         SELECT DISTINCT m.repo, m.digest FROM gc_live l
           JOIN manifests m ON m.repo = l.repo AND m.subject = l.digest
          WHERE NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = m.repo AND d.digest = m.digest)
         ON CONFLICT DO NOTHING`,
      );
      if (children.rowCount! + referrers.rowCount! === 0) break;
    }
    // 4. Live blobs: referenced by or being the bytes of a live manifest, fresh, or being filled.
    await s.query(
      `INSERT INTO gc_live_blobs (digest)
       SELECT DISTINCT r.ref_digest FROM gc_live l
         JOIN manifest_refs r ON r.repo = l.repo AND r.manifest_digest = l.digest AND r.kind = 'blob'
       ON CONFLICT DO NOTHING`,
    );
    await s.query('INSERT INTO gc_live_blobs (digest) SELECT DISTINCT digest FROM gc_live ON CONFLICT DO NOTHING');
    await run(`INSERT INTO gc_live_blobs (digest) SELECT b.digest FROM blobs b WHERE ${FRESH('b')} ON CONFLICT DO NOTHING`, p);
    if (opts.activeBlobs.length > 0) {
      await s.query('INSERT INTO gc_active (digest) SELECT DISTINCT unnest($1::text[]) ON CONFLICT DO NOTHING', [opts.activeBlobs]);
      await s.query('INSERT INTO gc_live_blobs (digest) SELECT digest FROM gc_active ON CONFLICT DO NOTHING');
    }

    // 5. Size budget: drop the least recently pulled cached manifests until the cached bytes that
    // stay fit. A blob is freed only when no live manifest still needs it (shared layers stay).
    if (opts.maxCachedBytes !== undefined) await this.evictBySize(s, opts.maxCachedBytes, opts.cutoff);

    // 6. Everything else that is not live is garbage.
    await s.query(
      `INSERT INTO gc_dead (repo, digest, rule, access)
       SELECT m.repo, m.digest, 'unreferenced', m.last_access_at FROM manifests m
        WHERE NOT EXISTS (SELECT 1 FROM gc_live l WHERE l.repo = m.repo AND l.digest = m.digest)
       ON CONFLICT DO NOTHING`,
    );

    const count = async (sql: string): Promise<number> => (await s.query<{ n: number | null }>(sql)).rows[0]?.n ?? 0;
    const deadBlobs = 'FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM gc_live_blobs l WHERE l.digest = b.digest)';
    return {
      manifests: await count('SELECT COUNT(*) AS n FROM gc_dead'),
      tags: await count('SELECT COUNT(*) AS n FROM tags t JOIN gc_dead d ON d.repo = t.repo AND d.digest = t.digest'),
      blobs: await count(`SELECT COUNT(*) AS n ${deadBlobs}`),
      bytes: await count(`SELECT SUM(size)::bigint AS n ${deadBlobs}`),
      bytesKept: await count('SELECT SUM(b.size)::bigint AS n FROM blobs b JOIN gc_live_blobs l ON l.digest = b.digest'),
      evictedByAge: await count("SELECT COUNT(*) AS n FROM gc_dead WHERE rule = 'age'"),
      evictedBySize: await count("SELECT COUNT(*) AS n FROM gc_dead WHERE rule = 'size'"),
    };
  }

  private async evictBySize(s: Session, maxBytes: number, cutoff: number): Promise<void> {
    let total =
      (await s.query<{ n: number | null }>('SELECT SUM(b.size)::bigint AS n FROM blobs b JOIN gc_live_blobs l ON l.digest = b.digest WHERE NOT b.local'))
        .rows[0]?.n ?? 0;
    if (total <= maxBytes) return;
    const page = `SELECT m.repo, m.digest, m.last_access_at AS access FROM manifests m
         JOIN gc_live l ON l.repo = m.repo AND l.digest = m.digest
        WHERE NOT m.local AND NOT (${FRESH('m')})
          AND (m.last_access_at, m.repo, m.digest) > (@access, @repo, @digest)
        ORDER BY m.last_access_at, m.repo, m.digest LIMIT 100`;
    // Cached blobs of this manifest (its references and its own bytes) no live manifest needs any more.
    const freed = `SELECT b.digest, b.size FROM blobs b
        WHERE b.digest IN (SELECT ref_digest FROM manifest_refs WHERE repo = @repo AND manifest_digest = @digest AND kind = 'blob'
                           UNION SELECT @digest)
          AND NOT b.local AND NOT (${FRESH('b')})
          AND EXISTS (SELECT 1 FROM gc_live_blobs lb WHERE lb.digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM gc_active a WHERE a.digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM gc_live l WHERE l.digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM manifest_refs r JOIN gc_live l ON l.repo = r.repo AND l.digest = r.manifest_digest
                           WHERE r.ref_digest = b.digest AND r.kind = 'blob')`;
    let cursor = { access: Number.MIN_SAFE_INTEGER, repo: '', digest: '' };
    while (total > maxBytes) {
      const { rows } = await s.query<{ repo: string; digest: string; access: number }>(...named(page, { cutoff, ...cursor }));
      if (rows.length === 0) break;
      for (const m of rows) {
        cursor = m;
        await s.query('DELETE FROM gc_live WHERE repo = $1 AND digest = $2', [m.repo, m.digest]);
        await s.query("INSERT INTO gc_dead (repo, digest, rule, access) VALUES ($1, $2, 'size', $3) ON CONFLICT DO NOTHING", [m.repo, m.digest, m.access]);
        const blobs = await s.query<{ digest: string; size: number }>(...named(freed, { repo: m.repo, digest: m.digest, cutoff }));
        for (const b of blobs.rows) {
          await s.query('DELETE FROM gc_live_blobs WHERE digest = $1', [b.digest]);
          total -= b.size;
        }
        if (total <= maxBytes) break;
      }
    }
  }

  async deadManifests(after: [string, string] | undefined, limit: number): Promise<GcDeadManifest[]> {
    const { rows } = await this.markSession().query<{ repo: string; digest: string; rule: GcRule; access: number }>(
      'SELECT repo, digest, rule, access FROM gc_dead WHERE (repo, digest) > ($1, $2) ORDER BY repo, digest LIMIT $3',
      [after?.[0] ?? '', after?.[1] ?? '', limit],
    );
    return rows;
  }

  async sweepManifest(m: GcDeadManifest, cutoff: number): Promise<number | undefined> {
    // Evicted: still cached, not pulled since the mark, outside grace — tags do not protect it.
    // Unreferenced: still untagged, outside grace, and no index or subject outside the dead set holds it.
    const del = named(
      `DELETE FROM manifests AS m WHERE m.repo = @repo AND m.digest = @digest AND NOT (${FRESH('m')})
        AND (NOT @evict OR (NOT m.local AND m.last_access_at <= @access))
        AND (@evict OR (
              NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest)
          AND NOT EXISTS (SELECT 1 FROM manifest_refs r
                           WHERE r.repo = m.repo AND r.ref_digest = m.digest AND r.kind = 'manifest'
                             AND NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = r.repo AND d.digest = r.manifest_digest))
          AND (m.subject IS NULL OR NOT EXISTS (
                SELECT 1 FROM manifests s WHERE s.repo = m.repo AND s.digest = m.subject
                   AND NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = s.repo AND d.digest = s.digest)))))`,
      { repo: m.repo, digest: m.digest, cutoff, access: m.access, evict: m.rule !== 'unreferenced' },
    );
    return this.markSession().transaction(async (q) => {
      // The row lock first: a tag being added (its foreign key locks the manifest row), a pull being
      // recorded or an index put that verified this child commit before the DELETE below looks.
      const locked = await q.query('SELECT 1 FROM manifests WHERE repo = $1 AND digest = $2 FOR UPDATE', [m.repo, m.digest]);
      if (locked.rowCount === 0) return undefined;
      const tags = (await q.query<{ n: number }>('SELECT COUNT(*) AS n FROM tags WHERE repo = $1 AND digest = $2', [m.repo, m.digest])).rows[0]!.n;
      if ((await q.query(...del)).rowCount === 0) return undefined;
      await q.query('DELETE FROM tags WHERE repo = $1 AND digest = $2', [m.repo, m.digest]);
      await q.query('DELETE FROM manifest_refs WHERE repo = $1 AND manifest_digest = $2', [m.repo, m.digest]);
      // Every node drops it from memory (and the tags that pointed at it) when this commits.
      await this.db.changes.notify(q, [{ kind: 'manifest', repo: m.repo, digest: m.digest }]);
      return tags;
    });
  }

  async sweepLinks(cutoff: number, after: [string, string] | undefined, limit: number): Promise<{ removed: number; next?: [string, string] }> {
    const { rows } = await this.db.query<{ repo: string; digest: string }>(
      'SELECT repo, digest FROM repo_blobs WHERE (repo, digest) > ($1, $2) ORDER BY repo, digest LIMIT $3',
      [after?.[0] ?? '', after?.[1] ?? '', limit],
    );
    const last = rows[rows.length - 1];
    if (!last) return { removed: 0 };
    // A link stays while a manifest of its repository references the blob (or is it), or while the
    // blob row is fresh (a push refreshes the row before it links, and links before it puts its
    // manifest). One statement for the page, each row re-checked as it is deleted.
    const r = await this.db.query(
      ...named(
        `DELETE FROM repo_blobs AS l USING unnest(@repos::text[], @digests::text[]) AS p(repo, digest)
          WHERE l.repo = p.repo AND l.digest = p.digest
            AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.ref_digest = l.digest AND r.repo = l.repo AND r.kind = 'blob')
            AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo = l.repo AND m.digest = l.digest)
            AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = l.digest AND ${FRESH('b')})`,
        { repos: rows.map((x) => x.repo), digests: rows.map((x) => x.digest), cutoff },
      ),
    );
    const removed = r.rowCount!;
    return rows.length < limit ? { removed } : { removed, next: [last.repo, last.digest] };
  }

  async deadBlobs(after: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.markSession().query<{ digest: string }>(
      `SELECT digest FROM blobs b WHERE b.digest > $1
         AND NOT EXISTS (SELECT 1 FROM gc_live_blobs l WHERE l.digest = b.digest)
       ORDER BY digest LIMIT $2`,
      [after ?? '', limit],
    );
    return rows.map((r) => r.digest);
  }

  async sweepBlobs(digests: string[], cutoff: number): Promise<Map<string, number>> {
    const removed = new Map<string, number>();
    if (digests.length === 0) return removed;
    await this.db.transaction(async (q) => {
      removed.clear();
      await lockBlobs(q, digests);
      const { rows } = await q.query<{ digest: string; size: number }>(...named(SWEEP_BLOBS, { digests, cutoff }));
      for (const r of rows) removed.set(r.digest, r.size);
    });
    return removed;
  }

  async sweepBlob(digest: string, cutoff: number): Promise<number | undefined> {
    return (await this.sweepBlobs([digest], cutoff)).get(digest);
  }

  async blobBytes(): Promise<number> {
    return (await this.db.query<{ n: number | null }>('SELECT SUM(size)::bigint AS n FROM blobs')).rows[0]?.n ?? 0;
  }

  async endMark(): Promise<void> {
    const s = this.marked;
    if (!s) return;
    this.marked = undefined;
    try {
      // The connection goes back to the pool without the temporary tables.
      await s.query('DROP TABLE IF EXISTS pg_temp.gc_live, pg_temp.gc_dead, pg_temp.gc_live_blobs, pg_temp.gc_active');
    } finally {
      s.release();
    }
  }

  async existingBlobs(digests: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < digests.length; i += 1000) {
      const { rows } = await this.db.query<{ digest: string }>('SELECT digest FROM blobs WHERE digest = ANY($1::text[])', [digests.slice(i, i + 1000)]);
      for (const r of rows) found.add(r.digest);
    }
    return found;
  }

  async blobDigests(after: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ digest: string }>('SELECT digest FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2', [after ?? '', limit]);
    return rows.map((r) => r.digest);
  }

  async danglingReferences(limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ digest: string }>(
      `SELECT r.ref_digest AS digest FROM manifest_refs r
         JOIN manifests m ON m.repo = r.repo AND m.digest = r.manifest_digest
        WHERE r.kind = 'blob' AND m.local AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = r.ref_digest)
       UNION
       SELECT m.digest FROM manifests m WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = m.digest)
       ORDER BY digest LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.digest);
  }

  async badTags(limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ name: string }>(
      `SELECT t.repo || ':' || t.tag AS name FROM tags t
        WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo = t.repo AND m.digest = t.digest)
        ORDER BY t.repo, t.tag LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.name);
  }

  async saveReport(report: object, keep: number): Promise<void> {
    await this.db.transaction(async (q) => {
      await q.query('INSERT INTO gc_runs (report) VALUES ($1)', [JSON.stringify(report)]);
      await q.query('DELETE FROM gc_runs WHERE id NOT IN (SELECT id FROM gc_runs ORDER BY id DESC LIMIT $1)', [keep]);
    });
  }

  async listReports(limit: number): Promise<object[]> {
    const { rows } = await this.db.query<{ report: string }>('SELECT report FROM gc_runs ORDER BY id DESC LIMIT $1', [limit]);
    return rows.map((r) => JSON.parse(r.report) as object);
  }

  /** The connection of the last mark (its temporary tables); a sweep without a mark is a bug. */
  private markSession(): Session {
    if (!this.marked) throw new Error('no mark in progress: call mark() first');
    return this.marked;
  }
}

/**
 * Locks the blob rows about to be swept, in digest order (the order putManifest's verification locks
 * them in, so the two never deadlock). The DELETE that follows is a later statement: it sees every
 * reference committed by a transaction that held one of these rows.
 */
async function lockBlobs(q: Queryable, digests: string[]): Promise<void> {
  await q.query('SELECT 1 FROM blobs WHERE digest = ANY($1::text[]) ORDER BY digest FOR UPDATE', [digests]);
}
