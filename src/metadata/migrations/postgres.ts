// PostgreSQL schema migrations, applied in order under an advisory lock (postgres-database.ts); the
// schema_migrations table records each version applied. Never edit a migration that has shipped:
// append a new one. Version N here is the same logical schema as version N of migrations/sqlite.ts
// (same tables, columns and keys), written in PostgreSQL's dialect:
// - timestamps and sizes are BIGINT milliseconds / bytes (INTEGER is 32-bit here);
// - text keys are COLLATE "C", so names and digests sort by bytes as in SQLite, whatever the
//   database's default collation (the `name > cursor` pagination depends on it);
// - the 0/1 flags of SQLite are BOOLEAN.

export const postgresMigrations: readonly string[] = [
  // 1: initial schema
  `
  CREATE TABLE repositories (
    name        TEXT COLLATE "C" PRIMARY KEY,
    created_at  BIGINT NOT NULL
  );

  CREATE TABLE blobs (
    digest          TEXT COLLATE "C" PRIMARY KEY,
    size            BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    last_access_at  BIGINT  NOT NULL,
    -- true = pushed locally, false = cached from an upstream (only cached content is evicted by age/size).
    local           BOOLEAN NOT NULL
  );

  -- A blob is served under a repository only if linked there. No foreign key to blobs: the row may be
  -- written by a fill on another node, and the collector checks links before deleting a blob.
  CREATE TABLE repo_blobs (
    repo    TEXT COLLATE "C" NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repo, digest)
  );
  CREATE INDEX repo_blobs_digest ON repo_blobs (digest);

  CREATE TABLE manifests (
    repo            TEXT COLLATE "C" NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest          TEXT COLLATE "C" NOT NULL,
    media_type      TEXT   NOT NULL,
    size            BIGINT NOT NULL,
    subject         TEXT COLLATE "C",
    artifact_type   TEXT,
    annotations     TEXT,  -- JSON object, or NULL
    created_at      BIGINT NOT NULL,
    last_access_at  BIGINT NOT NULL,
    PRIMARY KEY (repo, digest)
  );
  -- Referrers API: manifests in a repository whose subject is a given digest.
  CREATE INDEX manifests_referrers ON manifests (repo, subject) WHERE subject IS NOT NULL;

  -- The GC graph: what each manifest points at (config and layers = 'blob', index children = 'manifest').
  CREATE TABLE manifest_refs (
    repo             TEXT COLLATE "C" NOT NULL,
    manifest_digest  TEXT COLLATE "C" NOT NULL,
    ref_digest       TEXT COLLATE "C" NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repo, manifest_digest, ref_digest, kind),
    FOREIGN KEY (repo, manifest_digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE
  );
  CREATE INDEX manifest_refs_ref ON manifest_refs (ref_digest);

  CREATE TABLE tags (
    repo        TEXT COLLATE "C" NOT NULL,
    tag         TEXT COLLATE "C" NOT NULL,
    digest      TEXT COLLATE "C" NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (repo, tag),
    FOREIGN KEY (repo, digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE
  );
  CREATE INDEX tags_by_digest ON tags (repo, digest);

  -- No foreign key to repositories: an upload in progress does not make a repository visible.
  CREATE TABLE uploads (
    id          TEXT COLLATE "C" PRIMARY KEY,
    repo        TEXT   NOT NULL,
    "offset"    BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
  );
  `,

  // 2: service tokens
  `
  CREATE TABLE service_tokens (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT   NOT NULL,
    secret_hash   TEXT   NOT NULL,   -- hex SHA-256 of the secret; the secret itself is never stored
    scopes        TEXT   NOT NULL,   -- JSON array of {repositories, actions}
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
  );
  -- A name is the Basic-auth user name of its token: unique among the tokens not revoked, so a name
  -- is free again once its token is revoked (revoked rows stay for the audit trail).
  CREATE UNIQUE INDEX service_tokens_active_name ON service_tokens (name) WHERE revoked_at IS NULL;
  CREATE INDEX service_tokens_created ON service_tokens (created_at, id);
  `,

  // 3: garbage collection — which manifests are cached (evictable), the collector lock, run reports
  `
  -- true = pushed locally, false = cached from an upstream (only cached manifests are evicted by age/size).
  ALTER TABLE manifests ADD COLUMN local BOOLEAN NOT NULL DEFAULT true;
  UPDATE manifests SET local = false
   WHERE EXISTS (SELECT 1 FROM blobs b WHERE b.digest = manifests.digest AND NOT b.local);
  -- Least recently pulled cached manifests first (size eviction), and by digest (a blob's own manifest).
  CREATE INDEX manifests_lru ON manifests (local, last_access_at);
  CREATE INDEX manifests_digest ON manifests (digest);

  -- One collector at a time across nodes: a holder id and an expiry the holder keeps renewing.
  CREATE TABLE gc_lock (
    name        TEXT   PRIMARY KEY,
    holder      TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL
  );

  -- The last reports (JSON), dry runs included.
  CREATE TABLE gc_runs (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report  TEXT   NOT NULL
  );
  `,

  // 4: a manifest whose last tag was deleted through the API goes to the collector even when
  // untagged manifests are otherwise kept (gc.deleteUntagged off); a new push or tag clears it.
  `
  ALTER TABLE manifests ADD COLUMN released_at BIGINT;
  `,

  // 5: repository ownership — the first user allowed to push to a repository owns it (policy subject
  // \`owner\`). No foreign key to repositories: the claim is made when the push starts, before the
  // repository holds anything, and a repository is listed only once it does.
  `
  CREATE TABLE repository_owners (
    repo        TEXT COLLATE "C" PRIMARY KEY,
    owner       TEXT   NOT NULL,
    claimed_at  BIGINT NOT NULL
  );
  `,

  // 6: fill leases: the node fetching a cold blob from its upstream for the whole cluster
  // (postgres-fill-leases.ts). Expiries are on the database's clock, so nodes' clocks need not agree.
  // SQLite's version 6 is empty: a single process keeps its fills in memory.
  `
  CREATE TABLE fill_leases (
    digest      TEXT COLLATE "C" PRIMARY KEY,
    node        TEXT   NOT NULL,   -- the holder's id (host/pid/random), unique per process run
    url         TEXT   NOT NULL,   -- where the other nodes stream the growing bytes from
    repo        TEXT   NOT NULL,   -- the repository it fetches for (its upstream vouched for the digest there)
    expires_at  BIGINT NOT NULL
  );
  `,

  // 7: the writer a fill stores its bytes in (an upload session id of the blob store), named by the
  // first node to claim the digest and kept when another takes the fill over, which then goes on
  // from the bytes already stored.
  `
  ALTER TABLE fill_leases ADD COLUMN writer TEXT;
  `,

  // 8: when a manifest was last pulled (the management API's last pull), apart from last_access_at,
  // which a push or a re-put also moves (the collector's freshness). NULL = never pulled. Rows from
  // before: a last access after the creation was most likely a pull.
  `
  ALTER TABLE manifests ADD COLUMN pulled_at BIGINT;
  UPDATE manifests SET pulled_at = last_access_at WHERE last_access_at > created_at;
  `,
];

/**
 * Tables of libraries, outside the versioned schema (the SQLite driver has no counterpart: a single
 * process keeps these caches in memory). Created if absent after the migrations, under their lock.
 * keyv: the shared TTL caches of @keyv/postgres (postgres-keyv.ts), in the columns it reads and
 * writes; each value carries its own expiry.
 */
export const postgresLibraryTables: readonly string[] = [
  'CREATE TABLE IF NOT EXISTS keyv (key VARCHAR(1024) PRIMARY KEY, value TEXT)',
];
