// The SQLite databases the contract suites run on: in memory, and on a file under a temporary directory
// (a nested path, so open() has to create the parent directories). Each is closed when its test ends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import type { TestObject } from './contract-helpers.js';

export interface SqliteTargets {
  /** A fresh file path (nothing there yet). */
  newFile(): string;
  /** Each way of opening a fresh database, by the name the suites report. */
  openers: Array<[name: string, open: (t: TestObject) => SqliteDatabase]>;
}

export function sqliteTargets(root: TestObject): SqliteTargets {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-sqlite-'));
  root.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let seq = 0;
  const newFile = (): string => join(dir, `db-${++seq}`, 'nested', 'metadata.db');
  const opened = (file: () => string) => (t: TestObject): SqliteDatabase => {
    const database = SqliteDatabase.open(file());
    t.teardown(() => database.close());
    return database;
  };
  return {
    newFile,
    openers: [
      ['sqlite :memory:', opened(() => ':memory:')],
      ['sqlite file', opened(newFile)],
    ],
  };
}
