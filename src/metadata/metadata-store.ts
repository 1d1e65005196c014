// The MetadataStore interface: everything about the registry that is not blob bytes.
// One logical schema, several drivers (SQLite embedded now, PostgreSQL next); every driver passes
// test/contract/metadata-store.contract.ts. Methods are async so a networked driver fits unchanged.
import type { TokenScope } from '../auth/types.js';

export interface Page {
  /** Exclusive lower bound, lexical order (the `last` query parameter). */
  last?: string;
  /** Maximum number of entries; undefined = all. */
  n?: number;
}

export interface BlobRecord {
  digest: string;
  size: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
  lastAccessAt: number;
  /** true = pushed locally; false = cached from an upstream. */
  local: boolean;
}

export interface ManifestRecord {
  repo: string;
  digest: string;
  mediaType: string;
  size: number;
  /** Digest of the manifest this one refers to (`subject` field), if any. */
  subject: string | null;
  /** artifactType field, else the config media type for image manifests, else null. */
  artifactType: string | null;
  /** JSON-encoded annotations object, or null. */
  annotations: Record<string, string> | null;
  createdAt: number;
  lastAccessAt: number;
}

export interface ManifestReference {
  digest: string;
  /** 'blob' for config and layers, 'manifest' for an index's children. */
  kind: 'blob' | 'manifest';
}

export interface PutManifestInput {
  repo: string;
  digest: string;
  mediaType: string;
  size: number;
  subject: string | null;
  artifactType: string | null;
  annotations: Record<string, string> | null;
  references: ManifestReference[];
  /** Tags to point at this manifest in the same transaction. */
  tags: string[];
}

export interface UploadRecord {
  id: string;
  repo: string;
  /** Bytes received so far. */
  offset: number;
  startedAt: number;
  updatedAt: number;
}

/**
 * A service token for automation. The secret itself is never stored: only its hash (the token
 * string is shown once, at creation; see src/auth/service-tokens.ts).
 */
export interface ServiceTokenRecord {
  /** Short random id, [a-z0-9]{12}; part of the token string, so a token is looked up without scanning. */
  id: string;
  /** The Basic-auth user name to use with the token; unique among tokens that are not revoked. */
  name: string;
  /** Hex SHA-256 of the secret part of the token. */
  secretHash: string;
  scopes: TokenScope[];
  /** Milliseconds since the epoch; null = never. */
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export interface MetadataStore {
  // Repositories (a repository exists once it holds a blob link or a manifest).
  listRepositories(page?: Page): Promise<string[]>;
  repositoryExists(repo: string): Promise<boolean>;

  // Blobs and repository→blob links. A blob is served under a repository only if linked there.
  putBlob(digest: string, size: number, opts: { local: boolean }): Promise<void>;
  getBlob(digest: string): Promise<BlobRecord | undefined>;
  linkBlob(repo: string, digest: string): Promise<void>;
  isBlobLinked(repo: string, digest: string): Promise<boolean>;
  /** Returns false when the blob was not linked in that repository. */
  unlinkBlob(repo: string, digest: string): Promise<boolean>;

  // Manifests, their references and tags.
  /** Records the manifest, its references and tags atomically. Re-putting the same digest is idempotent. */
  putManifest(input: PutManifestInput): Promise<void>;
  getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined>;
  /** The blobs and child manifests a manifest references (as last recorded by putManifest); [] when absent. */
  listManifestReferences(repo: string, digest: string): Promise<ManifestReference[]>;
  /** Deletes the manifest and every tag pointing at it; false when absent. */
  deleteManifest(repo: string, digest: string): Promise<boolean>;
  getTag(repo: string, tag: string): Promise<string | undefined>;
  listTags(repo: string, page?: Page): Promise<string[]>;
  /** false when the tag did not exist. */
  deleteTag(repo: string, tag: string): Promise<boolean>;
  /** Manifests in the repository whose subject is `subject`, optionally filtered by artifact type. */
  listReferrers(repo: string, subject: string, artifactType?: string): Promise<ManifestRecord[]>;

  // Upload sessions (bytes live in the BlobStore's upload area).
  createUpload(upload: UploadRecord): Promise<void>;
  getUpload(id: string): Promise<UploadRecord | undefined>;
  /** Sets the offset only if it still equals `expectedOffset`; false otherwise (a concurrent writer won). */
  advanceUpload(id: string, expectedOffset: number, newOffset: number): Promise<boolean>;
  deleteUpload(id: string): Promise<boolean>;

  // Service tokens.
  /** Rejects with an Error saying the name is taken when a token that is not revoked has the same name. */
  createServiceToken(rec: ServiceTokenRecord): Promise<void>;
  getServiceToken(id: string): Promise<ServiceTokenRecord | undefined>;
  /** Every token, revoked and expired ones included, ordered by createdAt then id. */
  listServiceTokens(): Promise<ServiceTokenRecord[]>;
  /** Sets revokedAt; false when the token is absent or already revoked (the first revocation time is kept). */
  revokeServiceToken(id: string, at: number): Promise<boolean>;
  /** Sets lastUsedAt, never backwards (processes sharing the store may touch out of order); no-op when absent. */
  touchServiceToken(id: string, at: number): Promise<void>;

  close(): Promise<void>;
}
