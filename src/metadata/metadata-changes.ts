// What one node changed in the shared metadata that other nodes may hold in memory (their hot
// manifests and tag resolutions). Manifest bytes by digest never change, so only tags and deletions
// are said. A driver whose nodes share a database says them (PostgreSQL: postgres-change-feed.ts);
// processes on one SQLite file learn of removals through the store's change signal instead.

export type MetadataChange =
  /** The tag was set, moved or deleted. */
  | { kind: 'tag'; repo: string; tag: string }
  /** The manifest was deleted, and every tag of its repository that pointed at it. */
  | { kind: 'manifest'; repo: string; digest: string }
  /** Changes may have been missed (the feed was interrupted): anything held may be stale. */
  | { kind: 'all' };

export interface MetadataChangeFeed {
  /** Calls `fn` with each change another process makes, until the returned function is called. */
  subscribe(fn: (change: MetadataChange) => void): () => void;
}
