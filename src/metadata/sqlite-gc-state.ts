// The collector's queries on SQLite (GcState, see gc-state.ts and DESIGN.md "Garbage
// collection and eviction"). Mark runs in the database: temporary tables of this connection hold the
// live manifests, the live blobs and the dead manifests, so nothing is loaded into memory at once.
// Every sweep statement re-checks liveness against the current rows, so what changed after the mark
// (a push, a tag, a pull) wins over it.
import type Database from 'better-sqlite3';
import type { GcDeadManifest, GcMarkOptions, GcMarkResult, GcRule, GcState } from './gc-state.js';
import type { SqliteDatabase } from './sqlite-database.js';

const LOCK = 'gc';

/** A row is fresh (live by grace) when created or touched at or after the cutoff. */
const FRESH = (alias: string): string => `MAX(${alias}.created_at, ${alias}.last_access_at) >= @cutoff`;

/** Deletes one blob row only if, at that instant, nothing holds it and it is not fresh. */
const SWEEP_BLOB = `DELETE FROM blobs AS b WHERE b.digest = @digest AND NOT (${FRESH('b')})
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.ref_digest = b.digest AND r.kind = 'blob')
  AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)
  AND NOT EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest = b.digest)
 RETURNING size`;

const TEMP_TABLES = `
  CREATE TEMP TABLE IF NOT EXISTS gc_live (repo TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (repo, digest)) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS temp.gc_live_digest ON gc_live (digest);
  CREATE TEMP TABLE IF NOT EXISTS gc_dead (
    repo TEXT NOT NULL, digest TEXT NOT NULL, rule TEXT NOT NULL, access INTEGER NOT NULL,
    PRIMARY KEY (repo, digest)) WITHOUT ROWID;
  CREATE TEMP TABLE IF NOT EXISTS gc_live_blobs (digest TEXT PRIMARY KEY) WITHOUT ROWID;
  CREATE TEMP TABLE IF NOT EXISTS gc_active (digest TEXT PRIMARY KEY) WITHOUT ROWID;
  DELETE FROM gc_live; DELETE FROM gc_dead; DELETE FROM gc_live_blobs; DELETE FROM gc_active;
`;

export class SqliteGcState implements GcState {
  /** Statements prepared once and reused: SQLite's compiled statements live outside the JS heap. */
  private readonly statements = new Map<string, Database.Statement>();
  private readonly prepare = ((sql: string) => {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }) as Database.Database['prepare'];

  private readonly db: Database.Database;

  constructor(database: SqliteDatabase) {
    this.db = database.connection;
  }

  async acquireLock(holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const r = this.prepare(
        `INSERT INTO gc_lock (name, holder, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE gc_lock.expires_at < ? OR gc_lock.holder = excluded.holder`,
      )
      .run(LOCK, holder, now + ttlMs, now);
    return r.changes > 0;
  }

  async renewLock(holder: string, ttlMs: number): Promise<boolean> {
    return this.prepare('UPDATE gc_lock SET expires_at = ? WHERE name = ? AND holder = ?').run(Date.now() + ttlMs, LOCK, holder).changes > 0;
  }

  async lockHolder(): Promise<string | undefined> {
    const row = this.prepare('SELECT holder FROM gc_lock WHERE name = ?').get(LOCK) as { holder: string } | undefined;
    return row?.holder;
  }

  async takeOverLock(from: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.prepare('UPDATE gc_lock SET holder = ?, expires_at = ? WHERE name = ? AND holder = ?').run(holder, Date.now() + ttlMs, LOCK, from).changes > 0;
  }

  async releaseLock(holder: string): Promise<void> {
    this.prepare('DELETE FROM gc_lock WHERE name = ? AND holder = ?').run(LOCK, holder);
  }

  async mark(opts: GcMarkOptions): Promise<GcMarkResult> {
    const db = this.db;
    db.exec(TEMP_TABLES);
    const p = { cutoff: opts.cutoff, ageCutoff: opts.ageCutoff ?? Number.MIN_SAFE_INTEGER, keepUntagged: opts.deleteUntagged ? 0 : 1 };
    // 1. Cached manifests not pulled since ageCutoff are evicted, tagged or not (grace still applies).
    if (opts.ageCutoff !== undefined) {
      this.prepare(
        `INSERT INTO gc_dead (repo, digest, rule, access)
         SELECT m.repo, m.digest, 'age', m.last_access_at FROM manifests m
          WHERE m.local = 0 AND MAX(m.created_at, m.last_access_at) < @ageCutoff AND NOT (${FRESH('m')})`,
      ).run(p);
    }
    // 2. Roots: tagged, fresh, or (unless deleteUntagged) any manifest whose last tag was not
    // deleted through the API — evicted ones excepted.
    this.prepare(
      `INSERT INTO gc_live (repo, digest)
       SELECT m.repo, m.digest FROM manifests m
        WHERE NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = m.repo AND d.digest = m.digest)
          AND ((@keepUntagged = 1 AND m.released_at IS NULL) OR ${FRESH('m')}
               OR EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest))`,
    ).run(p);
    // 3. Closure: children of a live index and referrers of a live subject, in the same repository.
    const children = this.prepare(
      `INSERT OR IGNORE INTO gc_live (repo, digest)
       SELECT m.repo, m.digest FROM gc_live l
         JOIN manifest_refs r ON r.repo = l.repo AND r.manifest_digest = l.digest AND r.kind = 'manifest'
         JOIN manifests m ON m.repo = r.repo AND m.digest = r.ref_digest
        WHERE NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = m.repo AND d.digest = m.digest)`,
    );
    const referrers = this.prepare(
      `INSERT OR IGNORE INTO gc_live (repo, digest)
       SELECT m.repo, m.digest FROM gc_live l
         JOIN manifests m ON m.repo = l.repo AND m.subject = l.digest
        WHERE NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = m.repo AND d.digest = m.digest)`,
    );
    for (;;) {
      const added = children.run().changes + referrers.run().changes;
      if (added === 0) break;
    }
    // 4. Live blobs: referenced by or being the bytes of a live manifest, fresh, or being filled.
    this.prepare(
      `INSERT OR IGNORE INTO gc_live_blobs (digest)
       SELECT r.ref_digest FROM gc_live l
         JOIN manifest_refs r ON r.repo = l.repo AND r.manifest_digest = l.digest AND r.kind = 'blob'`,
    ).run();
    this.prepare('INSERT OR IGNORE INTO gc_live_blobs (digest) SELECT digest FROM gc_live').run();
    this.prepare(`INSERT OR IGNORE INTO gc_live_blobs (digest) SELECT b.digest FROM blobs b WHERE ${FRESH('b')}`).run(p);
    const active = this.prepare('INSERT OR IGNORE INTO gc_active (digest) VALUES (?)');
    for (const d of opts.activeBlobs) active.run(d);
    this.prepare('INSERT OR IGNORE INTO gc_live_blobs (digest) SELECT digest FROM gc_active').run();

    // 5. Size budget: drop the least recently pulled cached manifests until the cached bytes that
    // stay fit. A blob is freed only when no live manifest still needs it (shared layers stay).
    if (opts.maxCachedBytes !== undefined) this.evictBySize(opts.maxCachedBytes, opts.cutoff);

    // 6. Everything else that is not live is garbage.
    this.prepare(
      `INSERT OR IGNORE INTO gc_dead (repo, digest, rule, access)
       SELECT m.repo, m.digest, 'unreferenced', m.last_access_at FROM manifests m
        WHERE NOT EXISTS (SELECT 1 FROM gc_live l WHERE l.repo = m.repo AND l.digest = m.digest)`,
    ).run();

    const count = (sql: string): number => (this.prepare(sql).get() as { n: number | null }).n ?? 0;
    return {
      manifests: count('SELECT COUNT(*) AS n FROM gc_dead'),
      tags: count('SELECT COUNT(*) AS n FROM tags t JOIN gc_dead d ON d.repo = t.repo AND d.digest = t.digest'),
      blobs: count('SELECT COUNT(*) AS n FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM gc_live_blobs l WHERE l.digest = b.digest)'),
      bytes: count('SELECT SUM(size) AS n FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM gc_live_blobs l WHERE l.digest = b.digest)'),
      bytesKept: count('SELECT SUM(b.size) AS n FROM blobs b JOIN gc_live_blobs l ON l.digest = b.digest'),
      evictedByAge: count("SELECT COUNT(*) AS n FROM gc_dead WHERE rule = 'age'"),
      evictedBySize: count("SELECT COUNT(*) AS n FROM gc_dead WHERE rule = 'size'"),
    };
  }

  private evictBySize(maxBytes: number, cutoff: number): void {
    let total =
      (this.prepare('SELECT SUM(b.size) AS n FROM blobs b JOIN gc_live_blobs l ON l.digest = b.digest WHERE b.local = 0').get() as { n: number | null })
        .n ?? 0;
    if (total <= maxBytes) return;
    const page = this.prepare<{ cutoff: number; access: number; repo: string; digest: string }, { repo: string; digest: string; access: number }>(
      `SELECT m.repo, m.digest, m.last_access_at AS access FROM manifests m
         JOIN gc_live l ON l.repo = m.repo AND l.digest = m.digest
        WHERE m.local = 0 AND NOT (${FRESH('m')})
          AND (m.last_access_at, m.repo, m.digest) > (@access, @repo, @digest)
        ORDER BY m.last_access_at, m.repo, m.digest LIMIT 100`,
    );
    const unlive = this.prepare('DELETE FROM gc_live WHERE repo = ? AND digest = ?');
    const dead = this.prepare("INSERT OR IGNORE INTO gc_dead (repo, digest, rule, access) VALUES (?, ?, 'size', ?)");
    // Cached blobs of this manifest (its references and its own bytes) no live manifest needs any more.
    const freed = this.prepare<{ repo: string; digest: string; cutoff: number }, { digest: string; size: number }>(
      `SELECT b.digest, b.size FROM blobs b
        WHERE b.digest IN (SELECT ref_digest FROM manifest_refs WHERE repo = @repo AND manifest_digest = @digest AND kind = 'blob'
                           UNION SELECT @digest)
          AND b.local = 0 AND NOT (${FRESH('b')})
          AND EXISTS (SELECT 1 FROM gc_live_blobs lb WHERE lb.digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM gc_active a WHERE a.digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM gc_live l WHERE l.digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM manifest_refs r JOIN gc_live l ON l.repo = r.repo AND l.digest = r.manifest_digest
                           WHERE r.ref_digest = b.digest AND r.kind = 'blob')`,
    );
    const unliveBlob = this.prepare('DELETE FROM gc_live_blobs WHERE digest = ?');
    let cursor = { access: Number.MIN_SAFE_INTEGER, repo: '', digest: '' };
    while (total > maxBytes) {
      const rows = page.all({ cutoff, ...cursor });
      if (rows.length === 0) break;
      for (const m of rows) {
        cursor = m;
        unlive.run(m.repo, m.digest);
        dead.run(m.repo, m.digest, m.access);
        for (const b of freed.all({ repo: m.repo, digest: m.digest, cutoff })) {
          unliveBlob.run(b.digest);
          total -= b.size;
        }
        if (total <= maxBytes) break;
      }
    }
  }

  async deadManifests(after: [string, string] | undefined, limit: number): Promise<GcDeadManifest[]> {
    return this.prepare<[string, string, number], { repo: string; digest: string; rule: GcRule; access: number }>(
        'SELECT repo, digest, rule, access FROM gc_dead WHERE (repo, digest) > (?, ?) ORDER BY repo, digest LIMIT ?',
      )
      .all(after?.[0] ?? '', after?.[1] ?? '', limit);
  }

  async sweepManifest(m: GcDeadManifest, cutoff: number): Promise<number | undefined> {
    const db = this.db;
    // Evicted: still cached, not pulled since the mark, outside grace — tags do not protect it.
    // Unreferenced: still untagged, outside grace, and no index or subject outside the dead set holds it.
    const evict = m.rule !== 'unreferenced';
    const del = this.prepare(
      `DELETE FROM manifests AS m WHERE m.repo = @repo AND m.digest = @digest AND NOT (${FRESH('m')})
        AND (@evict = 0 OR (m.local = 0 AND m.last_access_at <= @access))
        AND (@evict = 1 OR (
              NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = m.repo AND t.digest = m.digest)
          AND NOT EXISTS (SELECT 1 FROM manifest_refs r
                           WHERE r.repo = m.repo AND r.ref_digest = m.digest AND r.kind = 'manifest'
                             AND NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = r.repo AND d.digest = r.manifest_digest))
          AND (m.subject IS NULL OR NOT EXISTS (
                SELECT 1 FROM manifests s WHERE s.repo = m.repo AND s.digest = m.subject
                   AND NOT EXISTS (SELECT 1 FROM gc_dead d WHERE d.repo = s.repo AND d.digest = s.digest)))))`,
    );
    const tx = db.transaction((): number | undefined => {
      const tags = (this.prepare('SELECT COUNT(*) AS n FROM tags WHERE repo = ? AND digest = ?').get(m.repo, m.digest) as { n: number }).n;
      if (del.run({ repo: m.repo, digest: m.digest, cutoff, access: m.access, evict: evict ? 1 : 0 }).changes === 0) return undefined;
      this.prepare('DELETE FROM tags WHERE repo = ? AND digest = ?').run(m.repo, m.digest);
      this.prepare('DELETE FROM manifest_refs WHERE repo = ? AND manifest_digest = ?').run(m.repo, m.digest);
      return tags;
    });
    return tx.immediate();
  }

  async sweepLinks(cutoff: number, after: [string, string] | undefined, limit: number): Promise<{ removed: number; next?: [string, string] }> {
    const rows = this.prepare<[string, string, number], { repo: string; digest: string }>(
        'SELECT repo, digest FROM repo_blobs WHERE (repo, digest) > (?, ?) ORDER BY repo, digest LIMIT ?',
      )
      .all(after?.[0] ?? '', after?.[1] ?? '', limit);
    // A link stays while a manifest of its repository references the blob (or is it), or while the
    // blob row is fresh (a push links before it puts its manifest).
    const del = this.prepare(
      `DELETE FROM repo_blobs AS l WHERE l.repo = @repo AND l.digest = @digest
        AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.ref_digest = l.digest AND r.repo = l.repo AND r.kind = 'blob')
        AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo = l.repo AND m.digest = l.digest)
        AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = l.digest AND ${FRESH('b')})`,
    );
    let removed = 0;
    for (const r of rows) removed += del.run({ ...r, cutoff }).changes;
    const last = rows[rows.length - 1];
    return rows.length < limit || !last ? { removed } : { removed, next: [last.repo, last.digest] };
  }

  async deadBlobs(after: string | undefined, limit: number): Promise<string[]> {
    return this.prepare<[string, number], { digest: string }>(
        `SELECT digest FROM blobs b WHERE b.digest > ?
           AND NOT EXISTS (SELECT 1 FROM gc_live_blobs l WHERE l.digest = b.digest)
         ORDER BY digest LIMIT ?`,
      )
      .all(after ?? '', limit)
      .map((r) => r.digest);
  }

  async sweepBlobs(digests: string[], cutoff: number): Promise<Map<string, number>> {
    const removed = new Map<string, number>();
    const remove = this.prepare<{ digest: string; cutoff: number }, { size: number }>(SWEEP_BLOB);
    this.db.transaction(() => {
      for (const digest of digests) {
        const row = remove.get({ digest, cutoff });
        if (row) removed.set(digest, row.size);
      }
    })();
    return removed;
  }

  async sweepBlob(digest: string, cutoff: number): Promise<number | undefined> {
    const row = this.prepare<{ digest: string; cutoff: number }, { size: number }>(SWEEP_BLOB)
      .get({ digest, cutoff });
    return row?.size;
  }

  async blobBytes(): Promise<number> {
    return (this.prepare('SELECT SUM(size) AS n FROM blobs').get() as { n: number | null }).n ?? 0;
  }

  async endMark(): Promise<void> {
    this.db.exec('DROP TABLE IF EXISTS temp.gc_live; DROP TABLE IF EXISTS temp.gc_dead; DROP TABLE IF EXISTS temp.gc_live_blobs; DROP TABLE IF EXISTS temp.gc_active;');
  }

  async existingBlobs(digests: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    const select = this.prepare<[string], { digest: string }>('SELECT digest FROM blobs WHERE digest IN (SELECT value FROM json_each(?))');
    for (let i = 0; i < digests.length; i += 1000) {
      for (const r of select.all(JSON.stringify(digests.slice(i, i + 1000)))) found.add(r.digest);
    }
    return found;
  }

  async blobDigests(after: string | undefined, limit: number): Promise<string[]> {
    return this.prepare<[string, number], { digest: string }>('SELECT digest FROM blobs WHERE digest > ? ORDER BY digest LIMIT ?')
      .all(after ?? '', limit)
      .map((r) => r.digest);
  }

  async danglingReferences(limit: number): Promise<string[]> {
    return this.prepare<[number], { digest: string }>(
        `SELECT DISTINCT r.ref_digest AS digest FROM manifest_refs r
           JOIN manifests m ON m.repo = r.repo AND m.digest = r.manifest_digest
          WHERE r.kind = 'blob' AND m.local = 1 AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = r.ref_digest)
         UNION
         SELECT DISTINCT m.digest FROM manifests m WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = m.digest)
         ORDER BY digest LIMIT ?`,
      )
      .all(limit)
      .map((r) => r.digest);
  }

  async badTags(limit: number): Promise<string[]> {
    return this.prepare<[number], { name: string }>(
        `SELECT t.repo || ':' || t.tag AS name FROM tags t
          WHERE NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo = t.repo AND m.digest = t.digest)
          ORDER BY t.repo, t.tag LIMIT ?`,
      )
      .all(limit)
      .map((r) => r.name);
  }

  async saveReport(report: object, keep: number): Promise<void> {
    const db = this.db;
    db.transaction(() => {
      this.prepare('INSERT INTO gc_runs (report) VALUES (?)').run(JSON.stringify(report));
      this.prepare('DELETE FROM gc_runs WHERE id NOT IN (SELECT id FROM gc_runs ORDER BY id DESC LIMIT ?)').run(keep);
    })();
  }

  async listReports(limit: number): Promise<object[]> {
    return this.prepare<[number], { report: string }>('SELECT report FROM gc_runs ORDER BY id DESC LIMIT ?')
      .all(limit)
      .map((r) => JSON.parse(r.report) as object);
  }
}
