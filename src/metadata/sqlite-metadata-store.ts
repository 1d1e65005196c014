// The embedded MetadataStore: one SQLite file (better-sqlite3, synchronous calls behind async methods).
// WAL lets readers run while one writer commits; busy_timeout makes a second process (`wharf gc`)
// wait for the write lock instead of failing with SQLITE_BUSY.
import type { TokenScope } from '../auth/types.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteMigrations } from './migrations/sqlite.js';
import { SqliteGcStore } from './sqlite-gc-store.js';
import { MissingContentError } from './metadata-store.js';
import type { Page } from '../oci/page.js';
import type { ManifestReference } from '../oci/references.js';
import type {
  AccessBatch,
  GcMetadata,
  BlobRecord,
  ManifestRecord,
  MetadataStore,
  PutManifestInput,
  ServiceTokenRecord,
  UploadRecord,
} from './metadata-store.js';

const BUSY_TIMEOUT_MS = 5000;

interface BlobRow {
  digest: string;
  size: number;
  created_at: number;
  last_access_at: number;
  local: number;
}

interface ManifestRow {
  repo: string;
  digest: string;
  media_type: string;
  size: number;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
  created_at: number;
  last_access_at: number;
}

interface UploadRow {
  id: string;
  repo: string;
  offset: number;
  started_at: number;
  updated_at: number;
}

interface ServiceTokenRow {
  id: string;
  name: string;
  secret_hash: string;
  scopes: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** Applies the migrations not yet recorded in PRAGMA user_version, all in one write transaction. */
export function migrate(db: Database.Database, migrations: readonly string[] = sqliteMigrations): void {
  // IMMEDIATE takes the write lock before reading the version, so two processes opening a fresh
  // file at once cannot both apply migration 1.
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > migrations.length) {
      throw new Error(
        `metadata database schema version ${current} is newer than this Wharf (${migrations.length}); upgrade Wharf`,
      );
    }
    for (let v = current; v < migrations.length; v++) {
      db.exec(migrations[v]!);
    }
    if (current !== migrations.length) db.pragma(`user_version = ${migrations.length}`);
  }).immediate();
}

function pageArgs(page: Page | undefined): [string, number] {
  const n = page?.n;
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    throw new RangeError(`page size must be a non-negative integer, got ${n}`);
  }
  // '' sorts before every non-empty name; LIMIT -1 means no limit in SQLite.
  return [page?.last ?? '', n ?? -1];
}

function toBlob(row: BlobRow): BlobRecord {
  return {
    digest: row.digest,
    size: row.size,
    createdAt: row.created_at,
    lastAccessAt: row.last_access_at,
    local: row.local === 1,
  };
}

function toManifest(row: ManifestRow): ManifestRecord {
  return {
    repo: row.repo,
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    subject: row.subject,
    artifactType: row.artifact_type,
    annotations: row.annotations === null ? null : (JSON.parse(row.annotations) as Record<string, string>),
    createdAt: row.created_at,
    lastAccessAt: row.last_access_at,
  };
}

function toUpload(row: UploadRow): UploadRecord {
  return {
    id: row.id,
    repo: row.repo,
    offset: row.offset,
    startedAt: row.started_at,
    updatedAt: row.updated_at,
  };
}

function toServiceToken(row: ServiceTokenRow): ServiceTokenRecord {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    scopes: JSON.parse(row.scopes) as TokenScope[],
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export class SqliteMetadataStore implements MetadataStore {
  readonly #db: Database.Database;
  readonly #s;
  readonly #deleteTagTx: (repo: string, tag: string) => boolean;
  readonly #linkBlobTx: (repo: string, digest: string, now: number) => void;
  readonly #putManifestTx: (input: PutManifestInput, now: number) => void;
  readonly #deleteManifestTx: (repo: string, digest: string) => boolean;
  readonly #createServiceTokenTx: Database.Transaction<(rec: ServiceTokenRecord) => void>;
  readonly #touchTx: (batch: AccessBatch) => void;
  readonly gc: GcMetadata;

  /** Opens (creating if needed) the database at `file`, or ':memory:', and brings its schema up to date. */
  static open(file: string): SqliteMetadataStore {
    if (file !== ':memory:' && !file.startsWith('file:')) mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return new SqliteMetadataStore(db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#s = {
      ensureRepo: db.prepare<[string, number]>(
        'INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
      ),
      listRepos: db.prepare<[string, number], { name: string }>(
        'SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?',
      ),
      repoExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM repositories WHERE name = ?'),
      repoOwner: db.prepare<[string], { owner: string }>('SELECT owner FROM repository_owners WHERE repo = ?'),
      claimRepo: db.prepare<[string, string, number]>(
        'INSERT INTO repository_owners (repo, owner, claimed_at) VALUES (?, ?, ?) ON CONFLICT (repo) DO NOTHING',
      ),

      putBlob: db.prepare<[string, number, number, number, number]>(
        `INSERT INTO blobs (digest, size, created_at, last_access_at, local) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET
           size = excluded.size,
           last_access_at = MAX(blobs.last_access_at, excluded.last_access_at),
           local = MAX(blobs.local, excluded.local)`,
      ),
      getBlob: db.prepare<[string], BlobRow>('SELECT * FROM blobs WHERE digest = ?'),
      linkBlob: db.prepare<[string, string]>(
        'INSERT INTO repo_blobs (repo, digest) VALUES (?, ?) ON CONFLICT (repo, digest) DO NOTHING',
      ),
      isLinked: db.prepare<[string, string], { one: number }>(
        'SELECT 1 AS one FROM repo_blobs WHERE repo = ? AND digest = ?',
      ),
      unlinkBlob: db.prepare<[string, string]>('DELETE FROM repo_blobs WHERE repo = ? AND digest = ?'),
      blobRepos: db.prepare<[string, number], { repo: string }>('SELECT repo FROM repo_blobs WHERE digest = ? ORDER BY repo LIMIT ?'),

      // A re-put makes the row fresh (the collector spares what was touched within its grace) and
      // a local push of a cached manifest makes it local (never evicted by the cache rules).
      putManifest: db.prepare<
        [string, string, string, number, string | null, string | null, string | null, number, number, number]
      >(
        `INSERT INTO manifests
           (repo, digest, media_type, size, subject, artifact_type, annotations, created_at, last_access_at, local)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (repo, digest) DO UPDATE SET
           media_type = excluded.media_type,
           size = excluded.size,
           subject = excluded.subject,
           artifact_type = excluded.artifact_type,
           annotations = excluded.annotations,
           last_access_at = MAX(manifests.last_access_at, excluded.last_access_at),
           local = MAX(manifests.local, excluded.local),
           released_at = NULL`,
      ),
      blobExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM blobs WHERE digest = ?'),
      touchManifest: db.prepare<[number, string, string]>(
        'UPDATE manifests SET last_access_at = MAX(last_access_at, ?) WHERE repo = ? AND digest = ?',
      ),
      touchBlob: db.prepare<[number, string]>('UPDATE blobs SET last_access_at = MAX(last_access_at, ?) WHERE digest = ?'),
      getManifest: db.prepare<[string, string], ManifestRow>('SELECT * FROM manifests WHERE repo = ? AND digest = ?'),
      deleteManifest: db.prepare<[string, string]>('DELETE FROM manifests WHERE repo = ? AND digest = ?'),
      deleteRefs: db.prepare<[string, string]>('DELETE FROM manifest_refs WHERE repo = ? AND manifest_digest = ?'),
      insertRef: db.prepare<[string, string, string, string]>(
        `INSERT INTO manifest_refs (repo, manifest_digest, ref_digest, kind) VALUES (?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      ),
      listRefs: db.prepare<[string, string], ManifestReference>(
        `SELECT ref_digest AS digest, kind FROM manifest_refs
         WHERE repo = ? AND manifest_digest = ? ORDER BY kind, ref_digest`,
      ),
      listReferrers: db.prepare<[string, string], ManifestRow>(
        'SELECT * FROM manifests WHERE repo = ? AND subject = ? ORDER BY digest',
      ),
      listReferrersOfType: db.prepare<[string, string, string], ManifestRow>(
        'SELECT * FROM manifests WHERE repo = ? AND subject = ? AND artifact_type = ? ORDER BY digest',
      ),

      upsertTag: db.prepare<[string, string, string, number]>(
        `INSERT INTO tags (repo, tag, digest, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
      ),
      getTag: db.prepare<[string, string], { digest: string }>('SELECT digest FROM tags WHERE repo = ? AND tag = ?'),
      listTags: db.prepare<[string, string, number], { tag: string }>(
        'SELECT tag FROM tags WHERE repo = ? AND tag > ? ORDER BY tag LIMIT ?',
      ),
      deleteTag: db.prepare<[string, string], { digest: string }>('DELETE FROM tags WHERE repo = ? AND tag = ? RETURNING digest'),
      releaseManifest: db.prepare<[number, string, string, string]>(
        `UPDATE manifests SET released_at = ? WHERE repo = ? AND digest = ?
          AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = manifests.repo AND t.digest = ?)`,
      ),
      deleteTagsOf: db.prepare<[string, string]>('DELETE FROM tags WHERE repo = ? AND digest = ?'),

      createUpload: db.prepare<[string, string, number, number, number]>(
        'INSERT INTO uploads (id, repo, "offset", started_at, updated_at) VALUES (?, ?, ?, ?, ?)',
      ),
      getUpload: db.prepare<[string], UploadRow>('SELECT * FROM uploads WHERE id = ?'),
      advanceUpload: db.prepare<[number, number, string, number]>(
        'UPDATE uploads SET "offset" = ?, updated_at = ? WHERE id = ? AND "offset" = ?',
      ),
      deleteUpload: db.prepare<[string]>('DELETE FROM uploads WHERE id = ?'),

      createToken: db.prepare<[string, string, string, string, number, number | null, number | null, number | null]>(
        `INSERT INTO service_tokens
           (id, name, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      activeTokenNamed: db.prepare<[string], { id: string }>(
        'SELECT id FROM service_tokens WHERE name = ? AND revoked_at IS NULL',
      ),
      getToken: db.prepare<[string], ServiceTokenRow>('SELECT * FROM service_tokens WHERE id = ?'),
      listTokens: db.prepare<[], ServiceTokenRow>('SELECT * FROM service_tokens ORDER BY created_at, id'),
      revokeToken: db.prepare<[number, string]>(
        'UPDATE service_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
      ),
      touchToken: db.prepare<[number, string]>(
        'UPDATE service_tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?',
      ),
    };

    const s = this.#s;
    this.#linkBlobTx = db.transaction((repo: string, digest: string, now: number) => {
      s.ensureRepo.run(repo, now);
      s.linkBlob.run(repo, digest);
    });
    this.#putManifestTx = db.transaction((input: PutManifestInput, now: number) => {
      // Checked inside the write transaction: the collector deletes a blob row only when nothing
      // references it, so either it sees the references recorded here or this sees its deletion.
      if (input.verify !== undefined) {
        const missing: string[] = [];
        const self = s.blobExists.get(input.digest) === undefined;
        if (self) missing.push(input.digest);
        if (input.verify === 'references') {
          for (const ref of input.references) {
            const present =
              ref.kind === 'blob' ? s.blobExists.get(ref.digest) !== undefined : s.getManifest.get(input.repo, ref.digest) !== undefined;
            if (!present) missing.push(ref.digest);
          }
        }
        if (missing.length > 0) throw new MissingContentError(missing, self);
      }
      s.ensureRepo.run(input.repo, now);
      s.putManifest.run(
        input.repo,
        input.digest,
        input.mediaType,
        input.size,
        input.subject,
        input.artifactType,
        input.annotations === null ? null : JSON.stringify(input.annotations),
        now,
        now,
        input.local === false ? 0 : 1,
      );
      s.deleteRefs.run(input.repo, input.digest);
      for (const ref of input.references) s.insertRef.run(input.repo, input.digest, ref.digest, ref.kind);
      for (const tag of input.tags) s.upsertTag.run(input.repo, tag, input.digest, now);
    });
    // References and tags are deleted explicitly (not only by ON DELETE CASCADE) so the statement
    // sequence is the same in every driver and does not depend on the foreign_keys pragma.
    this.#deleteManifestTx = db.transaction((repo: string, digest: string) => {
      s.deleteTagsOf.run(repo, digest);
      s.deleteRefs.run(repo, digest);
      return s.deleteManifest.run(repo, digest).changes > 0;
    });
    this.#touchTx = db.transaction((batch: AccessBatch) => {
      for (const m of batch.manifests) s.touchManifest.run(m.at, m.repo, m.digest);
      for (const b of batch.blobs) s.touchBlob.run(b.at, b.digest);
    });
    this.#deleteTagTx = db.transaction((repo: string, tag: string): boolean => {
      const row = s.deleteTag.get(repo, tag);
      if (!row) return false;
      // Its manifest, if no other tag holds it, is released to the collector.
      s.releaseManifest.run(Date.now(), repo, row.digest, row.digest);
      return true;
    });
    this.gc = new SqliteGcStore(db);
    // The name check and the insert share one write transaction, so two processes (server and CLI)
    // cannot both take a name; the partial unique index is the backstop.
    this.#createServiceTokenTx = db.transaction((rec: ServiceTokenRecord) => {
      if (rec.revokedAt === null && s.activeTokenNamed.get(rec.name) !== undefined) {
        throw new Error(`service token name "${rec.name}" is already taken by an active token`);
      }
      s.createToken.run(
        rec.id,
        rec.name,
        rec.secretHash,
        JSON.stringify(rec.scopes),
        rec.createdAt,
        rec.expiresAt,
        rec.revokedAt,
        rec.lastUsedAt,
      );
    });
  }

  async listRepositories(page?: Page): Promise<string[]> {
    return this.#s.listRepos.all(...pageArgs(page)).map((r) => r.name);
  }

  async repositoryExists(repo: string): Promise<boolean> {
    return this.#s.repoExists.get(repo) !== undefined;
  }

  async repositoryOwner(repo: string): Promise<string | undefined> {
    return this.#s.repoOwner.get(repo)?.owner;
  }

  async claimRepository(repo: string, owner: string): Promise<string> {
    this.#s.claimRepo.run(repo, owner, Date.now());
    return this.#s.repoOwner.get(repo)!.owner;
  }

  async putBlob(digest: string, size: number, opts: { local: boolean }): Promise<void> {
    const now = Date.now();
    this.#s.putBlob.run(digest, size, now, now, opts.local ? 1 : 0);
  }

  async getBlob(digest: string): Promise<BlobRecord | undefined> {
    const row = this.#s.getBlob.get(digest);
    return row === undefined ? undefined : toBlob(row);
  }

  async linkBlob(repo: string, digest: string): Promise<void> {
    this.#linkBlobTx(repo, digest, Date.now());
  }

  async isBlobLinked(repo: string, digest: string): Promise<boolean> {
    return this.#s.isLinked.get(repo, digest) !== undefined;
  }

  async blobRepositories(digest: string, limit: number): Promise<string[]> {
    return this.#s.blobRepos.all(digest, limit).map((r) => r.repo);
  }

  async unlinkBlob(repo: string, digest: string): Promise<boolean> {
    return this.#s.unlinkBlob.run(repo, digest).changes > 0;
  }

  async putManifest(input: PutManifestInput): Promise<void> {
    this.#putManifestTx(input, Date.now());
  }

  async touchAccess(batch: AccessBatch): Promise<void> {
    if (batch.manifests.length === 0 && batch.blobs.length === 0) return;
    this.#touchTx(batch);
  }

  async refreshBlob(digest: string): Promise<boolean> {
    return this.#s.touchBlob.run(Date.now(), digest).changes > 0;
  }

  async getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined> {
    const row = this.#s.getManifest.get(repo, digest);
    return row === undefined ? undefined : toManifest(row);
  }

  async listManifestReferences(repo: string, digest: string): Promise<ManifestReference[]> {
    return this.#s.listRefs.all(repo, digest);
  }

  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    return this.#deleteManifestTx(repo, digest);
  }

  async getTag(repo: string, tag: string): Promise<string | undefined> {
    return this.#s.getTag.get(repo, tag)?.digest;
  }

  async listTags(repo: string, page?: Page): Promise<string[]> {
    return this.#s.listTags.all(repo, ...pageArgs(page)).map((r) => r.tag);
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    return this.#deleteTagTx(repo, tag);
  }

  async listReferrers(repo: string, subject: string, artifactType?: string): Promise<ManifestRecord[]> {
    const rows =
      artifactType === undefined
        ? this.#s.listReferrers.all(repo, subject)
        : this.#s.listReferrersOfType.all(repo, subject, artifactType);
    return rows.map(toManifest);
  }

  async createUpload(upload: UploadRecord): Promise<void> {
    this.#s.createUpload.run(upload.id, upload.repo, upload.offset, upload.startedAt, upload.updatedAt);
  }

  async getUpload(id: string): Promise<UploadRecord | undefined> {
    const row = this.#s.getUpload.get(id);
    return row === undefined ? undefined : toUpload(row);
  }

  async advanceUpload(id: string, expectedOffset: number, newOffset: number): Promise<boolean> {
    return this.#s.advanceUpload.run(newOffset, Date.now(), id, expectedOffset).changes > 0;
  }

  async deleteUpload(id: string): Promise<boolean> {
    return this.#s.deleteUpload.run(id).changes > 0;
  }

  async createServiceToken(rec: ServiceTokenRecord): Promise<void> {
    this.#createServiceTokenTx.immediate(rec);
  }

  async getServiceToken(id: string): Promise<ServiceTokenRecord | undefined> {
    const row = this.#s.getToken.get(id);
    return row === undefined ? undefined : toServiceToken(row);
  }

  async listServiceTokens(): Promise<ServiceTokenRecord[]> {
    return this.#s.listTokens.all().map(toServiceToken);
  }

  async revokeServiceToken(id: string, at: number): Promise<boolean> {
    return this.#s.revokeToken.run(at, id).changes > 0;
  }

  async touchServiceToken(id: string, at: number): Promise<void> {
    this.#s.touchToken.run(at, id);
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
