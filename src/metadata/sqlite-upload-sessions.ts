// Upload sessions in the shared SQLite database (the uploads table).
import type { SqliteDatabase } from './sqlite-database.js';
import type { UploadRecord, UploadSessions } from './upload-sessions.js';
import { toUpload, type UploadRow } from './metadata-rows.js';

export class SqliteUploadSessions implements UploadSessions {
  readonly #s;

  constructor(database: SqliteDatabase) {
    const db = database.connection;
    this.#s = {
      create: db.prepare<[string, string, number, number, number]>(
        'INSERT INTO uploads (id, repo, "offset", started_at, updated_at) VALUES (?, ?, ?, ?, ?)',
      ),
      get: db.prepare<[string], UploadRow>('SELECT * FROM uploads WHERE id = ?'),
      advance: db.prepare<[number, number, string, number]>(
        'UPDATE uploads SET "offset" = ?, updated_at = ? WHERE id = ? AND "offset" = ?',
      ),
      delete: db.prepare<[string]>('DELETE FROM uploads WHERE id = ?'),
      stale: db.prepare<[number, string, number], { id: string }>(
        'SELECT id FROM uploads WHERE updated_at < ? AND id > ? ORDER BY id LIMIT ?',
      ),
      sweep: db.prepare<[string, number]>('DELETE FROM uploads WHERE id = ? AND updated_at < ?'),
    };
  }

  async createUpload(upload: UploadRecord): Promise<void> {
    this.#s.create.run(upload.id, upload.repo, upload.offset, upload.startedAt, upload.updatedAt);
  }

  async getUpload(id: string): Promise<UploadRecord | undefined> {
    const row = this.#s.get.get(id);
    return row === undefined ? undefined : toUpload(row);
  }

  async advanceUpload(id: string, expectedOffset: number, newOffset: number): Promise<boolean> {
    return this.#s.advance.run(newOffset, Date.now(), id, expectedOffset).changes > 0;
  }

  async deleteUpload(id: string): Promise<boolean> {
    return this.#s.delete.run(id).changes > 0;
  }

  async staleUploads(before: number, after: string | undefined, limit: number): Promise<string[]> {
    return this.#s.stale.all(before, after ?? '', limit).map((r) => r.id);
  }

  async sweepUpload(id: string, before: number): Promise<boolean> {
    return this.#s.sweep.run(id, before).changes > 0;
  }
}
