// Who fills a cold blob for the whole cluster (DESIGN.md "Several nodes"): one lease per digest in
// the shared database, held by the node that fetches it from the upstream and renewed by its
// heartbeat; the other nodes read it to find where to stream the growing bytes from, and take the
// fill over once the lease has expired (its node is dead or cut off). Only PostgreSQL has one
// (postgres-fill-leases.ts): with SQLite a single process keeps its fills in memory.

/** The node holding (or asking for) a lease. */
export interface FillHolder {
  /** The node's id, unique per process run. */
  node: string;
  /** Where the other nodes reach it (its internal fill endpoint is under this URL). */
  url: string;
  /** The repository it fetches for: its upstream vouched for the digest there. */
  repo: string;
}

export interface FillLease extends FillHolder {
  digest: string;
  /** Not renewed in time: the holder is taken for dead, and the lease is anyone's to take. */
  expired: boolean;
}

/**
 * A lease taken (with the id of the writer its fill stores the bytes in: the first claimant's, so a
 * node taking a dead node's fill over finds the bytes it stored), or who holds it.
 */
export type FillClaim = { owned: true; writer: string } | { owned: false; lease: FillLease };

export interface FillLeases {
  /**
   * Takes the lease of `digest` for `holder` for `ttlMs` when nobody holds it, it has expired, or
   * `holder.node` holds it already; otherwise says who holds it. One statement in the common case.
   * `writer` names the fill's writer when the lease is new; a lease taken over keeps its own.
   */
  claim(digest: string, holder: FillHolder, ttlMs: number, writer: string): Promise<FillClaim>;
  /** The lease of `digest`, if any (expired ones included). */
  peek(digest: string): Promise<FillLease | undefined>;
  /** Extends by `ttlMs` the leases `node` still holds among `digests` (one statement for them all). */
  renew(node: string, digests: readonly string[], ttlMs: number): Promise<void>;
  /** Ends `node`'s lease of `digest` (the fill ended); nothing when another node holds it now. */
  release(digest: string, node: string): Promise<void>;
}
