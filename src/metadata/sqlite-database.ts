// The one SQLite file every SQLite store shares (better-sqlite3, synchronous calls behind async methods):
// opened once, its schema brought up to date, then handed to SqliteRegistryMetadata, SqliteUploadSessions,
// SqliteGcState and the service token store of src/auth. WAL lets readers run while one writer commits;
// busy_timeout makes a second process (`wharf gc`) wait for the write lock instead of failing with SQLITE_BUSY.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteMigrations } from './migrations/sqlite.js';

const BUSY_TIMEOUT_MS = 5000;

/** Applies the migrations not yet recorded in PRAGMA user_version, all in one write transaction. */
function migrate(db: Database.Database, migrations: readonly string[] = sqliteMigrations): void {
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

export class SqliteDatabase {
  /** Opens (creating if needed) the database at `file`, or ':memory:', and brings its schema up to date. */
  static open(file: string): SqliteDatabase {
    if (file !== ':memory:' && !file.startsWith('file:')) mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    try {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return new SqliteDatabase(db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** The connection the stores prepare their statements on. */
  private constructor(readonly connection: Database.Database) {}

  /** Closes the connection (every store over it with it); a second call does nothing. */
  async close(): Promise<void> {
    if (this.connection.open) this.connection.close();
  }
}
