// SQLite schema migrations, applied in order; PRAGMA user_version records how many have run.
// Never edit a migration that has shipped: append a new one. The PostgreSQL driver keeps the same
// logical schema (same tables, columns and keys) in its own dialect.
// Timestamps are integer milliseconds since the epoch (Date.now()).

export const sqliteMigrations: readonly string[] = [
  // 1: initial schema
  `
  CREATE TABLE repositories (
    name        TEXT    PRIMARY KEY,
    created_at  INTEGER NOT NULL
  );

  CREATE TABLE blobs (
    digest          TEXT    PRIMARY KEY,
    size            INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_access_at  INTEGER NOT NULL,
    -- 1 = pushed locally, 0 = cached from an upstream (only cached content is evicted by age/size).
    local           INTEGER NOT NULL CHECK (local IN (0, 1))
  );

  -- A blob is served under a repository only if linked there. No foreign key to blobs: the row may be
  -- written by a fill in another process, and the collector checks links before deleting a blob.
  CREATE TABLE repo_blobs (
    repo    TEXT NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest  TEXT NOT NULL,
    PRIMARY KEY (repo, digest)
  ) WITHOUT ROWID;
  CREATE INDEX repo_blobs_digest ON repo_blobs (digest);

  CREATE TABLE manifests (
    repo            TEXT    NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest          TEXT    NOT NULL,
    media_type      TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    subject         TEXT,
    artifact_type   TEXT,
    annotations     TEXT,   -- JSON object, or NULL
    created_at      INTEGER NOT NULL,
    last_access_at  INTEGER NOT NULL,
    PRIMARY KEY (repo, digest)
  );
  -- Referrers API: manifests in a repository whose subject is a given digest.
  CREATE INDEX manifests_referrers ON manifests (repo, subject) WHERE subject IS NOT NULL;

  -- The GC graph: what each manifest points at (config and layers = 'blob', index children = 'manifest').
  CREATE TABLE manifest_refs (
    repo             TEXT NOT NULL,
    manifest_digest  TEXT NOT NULL,
    ref_digest       TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repo, manifest_digest, ref_digest, kind),
    FOREIGN KEY (repo, manifest_digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE
  ) WITHOUT ROWID;
  CREATE INDEX manifest_refs_ref ON manifest_refs (ref_digest);

  CREATE TABLE tags (
    repo        TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (repo, tag),
    FOREIGN KEY (repo, digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE
  ) WITHOUT ROWID;
  CREATE INDEX tags_by_digest ON tags (repo, digest);

  -- No foreign key to repositories: an upload in progress does not make a repository visible.
  CREATE TABLE uploads (
    id          TEXT    PRIMARY KEY,
    repo        TEXT    NOT NULL,
    "offset"    INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
  );
  `,

  // 2: service tokens
  `
  CREATE TABLE service_tokens (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    secret_hash   TEXT    NOT NULL,   -- hex SHA-256 of the secret; the secret itself is never stored
    scopes        TEXT    NOT NULL,   -- JSON array of {repositories, actions}
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER
  );
  -- A name is the Basic-auth user name of its token: unique among the tokens not revoked, so a name
  -- is free again once its token is revoked (revoked rows stay for the audit trail).
  CREATE UNIQUE INDEX service_tokens_active_name ON service_tokens (name) WHERE revoked_at IS NULL;
  CREATE INDEX service_tokens_created ON service_tokens (created_at, id);
  `,

  // 3: garbage collection — which manifests are cached (evictable), the collector lock, run reports
  `
  -- 1 = pushed locally, 0 = cached from an upstream (only cached manifests are evicted by age/size).
  ALTER TABLE manifests ADD COLUMN local INTEGER NOT NULL DEFAULT 1 CHECK (local IN (0, 1));
  UPDATE manifests SET local = 0
   WHERE EXISTS (SELECT 1 FROM blobs b WHERE b.digest = manifests.digest AND b.local = 0);
  -- Least recently pulled cached manifests first (size eviction), and by digest (a blob's own manifest).
  CREATE INDEX manifests_lru ON manifests (local, last_access_at);
  CREATE INDEX manifests_digest ON manifests (digest);

  -- One collector at a time across processes: a holder id and an expiry the holder keeps renewing.
  CREATE TABLE gc_lock (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL
  );

  -- The last reports (JSON), dry runs included.
  CREATE TABLE gc_runs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    report  TEXT    NOT NULL
  );
  `,

  // 4: a manifest whose last tag was deleted through the API goes to the collector even when
  // untagged manifests are otherwise kept (gc.deleteUntagged off); a new push or tag clears it.
  `
  ALTER TABLE manifests ADD COLUMN released_at INTEGER;
  `,

  // 5: repository ownership — the first user allowed to push to a repository owns it (policy subject
  // `owner`). No foreign key to repositories: the claim is made when the push starts, before the
  // repository holds anything, and a repository is listed only once it does.
  `
  CREATE TABLE repository_owners (
    repo        TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    claimed_at  INTEGER NOT NULL
  );
  `,

  // 6: nothing. PostgreSQL's version 6 holds the cluster's fill leases; one process keeps its fills
  // in memory. Kept so that a version number names the same schema in both drivers.
  `SELECT 1;`,

  // 7: nothing (PostgreSQL's fill leases name their writer).
  `SELECT 1;`,

  // 8: when a manifest was last pulled (the management API's last pull), apart from last_access_at,
  // which a push or a re-put also moves (the collector's freshness). NULL = never pulled. Rows from
  // before: a last access after the creation was most likely a pull.
  `
  ALTER TABLE manifests ADD COLUMN pulled_at INTEGER;
  UPDATE manifests SET pulled_at = last_access_at WHERE last_access_at > created_at;
  `,
];
