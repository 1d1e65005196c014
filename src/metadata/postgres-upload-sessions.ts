// Upload sessions on PostgreSQL (the uploads table). Every write is one statement whose WHERE holds
// its condition (the offset a chunk continues from, the age of a stale session), so nodes appending
// to the same session or expiring it at once need no lock beyond the row's.
import type { PostgresDatabase } from './postgres-database.js';
import type { UploadRecord, UploadSessions } from './upload-sessions.js';
import { toUpload, type UploadRow } from './metadata-rows.js';

export class PostgresUploadSessions implements UploadSessions {
  constructor(private readonly db: PostgresDatabase) {}

  async createUpload(upload: UploadRecord): Promise<void> {
    await this.db.query('INSERT INTO uploads (id, repo, "offset", started_at, updated_at) VALUES ($1, $2, $3, $4, $5)', [
      upload.id,
      upload.repo,
      upload.offset,
      upload.startedAt,
      upload.updatedAt,
    ]);
  }

  async getUpload(id: string): Promise<UploadRecord | undefined> {
    const row = (await this.db.query<UploadRow>('SELECT * FROM uploads WHERE id = $1', [id])).rows[0];
    return row === undefined ? undefined : toUpload(row);
  }

  async advanceUpload(id: string, expectedOffset: number, newOffset: number): Promise<boolean> {
    const r = await this.db.query('UPDATE uploads SET "offset" = $1, updated_at = $2 WHERE id = $3 AND "offset" = $4', [newOffset, Date.now(), id, expectedOffset]);
    return r.rowCount! > 0;
  }

  async deleteUpload(id: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM uploads WHERE id = $1', [id])).rowCount! > 0;
  }

  async staleUploads(before: number, after: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>('SELECT id FROM uploads WHERE updated_at < $1 AND id > $2 ORDER BY id LIMIT $3', [before, after ?? '', limit]);
    return rows.map((r) => r.id);
  }

  async sweepUpload(id: string, before: number): Promise<boolean> {
    return (await this.db.query('DELETE FROM uploads WHERE id = $1 AND updated_at < $2', [id, before])).rowCount! > 0;
  }
}
