// FillLeases on PostgreSQL (table fill_leases, migration 6). Every expiry is computed and compared
// on the database's clock, so the nodes' clocks need not agree. A claim is one INSERT ... ON
// CONFLICT: concurrent claims of the same digest are ordered by the row, and exactly one wins.
import type { FillClaim, FillHolder, FillLease, FillLeases } from './fill-leases.js';
import { DB_NOW_MS as NOW_MS, type PostgresDatabase } from './postgres-database.js';

interface LeaseRow {
  node: string;
  url: string;
  repo: string;
  expired: boolean;
}

export class PostgresFillLeases implements FillLeases {
  constructor(private readonly db: PostgresDatabase) {}

  async claim(digest: string, holder: FillHolder, ttlMs: number, writer: string): Promise<FillClaim> {
    // A row that vanishes between the claim and the look (released) is claimed again.
    for (let attempt = 0; attempt < 3; attempt++) {
      // The writer is not updated on conflict: whoever takes the lease over goes on in the same one.
      const won = await this.db.query<{ writer: string | null }>(
        `INSERT INTO fill_leases (digest, node, url, repo, writer, expires_at) VALUES ($1, $2, $3, $4, $6, ${NOW_MS} + $5)
         ON CONFLICT (digest) DO UPDATE SET node = EXCLUDED.node, url = EXCLUDED.url, repo = EXCLUDED.repo, expires_at = EXCLUDED.expires_at,
           writer = COALESCE(fill_leases.writer, EXCLUDED.writer)
          WHERE fill_leases.node = EXCLUDED.node OR fill_leases.expires_at < ${NOW_MS}
         RETURNING writer`,
        [digest, holder.node, holder.url, holder.repo, ttlMs, writer],
      );
      if (won.rowCount === 1) return { owned: true, writer: won.rows[0]?.writer ?? writer };
      const lease = await this.peek(digest);
      if (lease) return { owned: false, lease };
    }
    throw new Error(`the fill lease of ${digest} changed hands three times during one claim`);
  }

  async peek(digest: string): Promise<FillLease | undefined> {
    const { rows } = await this.db.query<LeaseRow>(
      `SELECT node, url, repo, expires_at < ${NOW_MS} AS expired FROM fill_leases WHERE digest = $1`,
      [digest],
    );
    const row = rows[0];
    return row ? { digest, node: row.node, url: row.url, repo: row.repo, expired: row.expired } : undefined;
  }

  async renew(node: string, digests: readonly string[], ttlMs: number): Promise<void> {
    if (digests.length === 0) return;
    await this.db.query(`UPDATE fill_leases SET expires_at = ${NOW_MS} + $3 WHERE node = $1 AND digest = ANY($2::text[])`, [node, digests, ttlMs]);
  }

  async release(digest: string, node: string): Promise<void> {
    await this.db.query('DELETE FROM fill_leases WHERE digest = $1 AND node = $2', [digest, node]);
  }
}
