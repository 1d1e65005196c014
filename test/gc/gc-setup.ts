// Shared setup of the collector tests: a real FsBlobStore and the metadata stores (SQLite in the
// temporary data directory, or PostgreSQL in a schema of its own: useMetadataDriver), the registry
// services over them, and a collector whose clock can be moved forward.
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { SqliteDatabase } from '../../src/metadata/sqlite-database.js';
import { SqliteGcState } from '../../src/metadata/sqlite-gc-state.js';
import { SqliteRegistryMetadata } from '../../src/metadata/sqlite-registry-metadata.js';
import { SqliteUploadSessions } from '../../src/metadata/sqlite-upload-sessions.js';
import { PostgresGcState } from '../../src/metadata/postgres-gc-state.js';
import { PostgresRegistryMetadata } from '../../src/metadata/postgres-registry-metadata.js';
import { PostgresUploadSessions } from '../../src/metadata/postgres-upload-sessions.js';
import type { GcState } from '../../src/metadata/gc-state.js';
import type { RegistryMetadata } from '../../src/metadata/registry-metadata.js';
import type { UploadSessions } from '../../src/metadata/upload-sessions.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { LocalRegistry } from '../../src/registry/local-registry.js';
import { BlobLedger } from '../../src/ledger/blob-ledger.js';
import { GarbageCollector, type GcOptions } from '../../src/gc/collector.js';
import { fsck } from '../../src/gc/fsck.js';
import { parseManifest } from '../../src/registry/manifest.js';
import { blobPath } from '../../src/storage/paths.js';
import { tempDir } from '../helpers/server.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST } from '../helpers/http.js';
import { openTestDatabase, POSTGRES_URL, tempSchema } from '../helpers/postgres.js';
import { PostgresDatabase } from '../../src/metadata/postgres-database.js';
import type { EventSink } from '../../src/events/event.js';

export type MetadataDriver = 'sqlite' | 'postgres';
let driver: MetadataDriver = 'sqlite';

/**
 * The metadata driver every later setup() of this process uses (each test file is a process of its
 * own): the PostgreSQL files of test/gc/ set it, then import the SQLite-neutral test files.
 */
export function useMetadataDriver(d: MetadataDriver): void {
  driver = d;
}

/**
 * For a test that runs a server (startWharf) and a collector of its own on the server's metadata,
 * as `wharf gc` would: the config overrides that put the server on the current driver, and the
 * stores of a second connection to the same database, closed when `t` ends.
 */
export async function sharedStoreTarget(t: Teardownable): Promise<{
  overrides: Record<string, unknown>;
  open(dataDir: string): Promise<{ metadata: RegistryMetadata; uploads: UploadSessions; state: GcState }>;
}> {
  if (driver === 'postgres') {
    const schema = await tempSchema(t);
    return {
      overrides: { metadata: { postgres: { url: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, poolSize: 4 } } },
      open: async () => {
        const database = await PostgresDatabase.open({ url: POSTGRES_URL, schema, poolSize: 4 });
        const state = new PostgresGcState(database);
        t.teardown(async () => {
          await state.endMark();
          await database.close();
        });
        return { metadata: new PostgresRegistryMetadata(database), uploads: new PostgresUploadSessions(database), state };
      },
    };
  }
  return {
    overrides: {},
    open: async (dataDir) => {
      const database = SqliteDatabase.open(join(dataDir, 'metadata.db'));
      t.teardown(() => database.close());
      return { metadata: new SqliteRegistryMetadata(database), uploads: new SqliteUploadSessions(database), state: new SqliteGcState(database) };
    },
  };
}

/** The metadata stores of one database of the current driver, closed when `t` ends. */
async function openStores(t: Teardownable, dir: string): Promise<{ metadata: RegistryMetadata; uploads: UploadSessions; state: GcState; close(): Promise<void> }> {
  if (driver === 'postgres') {
    // The schema is dropped when t ends, after the close below (teardowns run last first).
    const database = await openTestDatabase(t);
    const state = new PostgresGcState(database);
    return {
      metadata: new PostgresRegistryMetadata(database),
      uploads: new PostgresUploadSessions(database),
      state,
      close: () => state.endMark(),
    };
  }
  const database = SqliteDatabase.open(join(dir, 'metadata.db'));
  return {
    metadata: new SqliteRegistryMetadata(database),
    uploads: new SqliteUploadSessions(database),
    state: new SqliteGcState(database),
    close: () => database.close(),
  };
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Options for a run: one hour of grace, everything else off. */
export function options(extra: Partial<GcOptions> = {}): GcOptions {
  return { grace: HOUR, deleteUntagged: false, cacheMaxAge: 0, cacheMaxSize: 0, uploadsMaxAge: DAY, dryRun: false, ...extra };
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export interface Image {
  digest: string;
  config: string;
  layers: string[];
  body: string;
}

export async function setup(t: Teardownable, opts: { activeFills?: () => Iterable<string>; events?: EventSink } = {}) {
  const dir = tempDir('wharf-gc-');
  const { metadata, uploads, state, close } = await openStores(t, dir);
  const blobs = await FsBlobStore.open(dir);
  const ledger = new BlobLedger(metadata, blobs, state);
  const registry = new LocalRegistry({ metadata, uploads, blobStore: blobs, ledger, chunkMinLength: 0 });
  /** How far the collector's clock is ahead of the wall clock (rows are written at wall-clock time). */
  const clock = { skew: 0 };
  const now = () => Date.now() + clock.skew;
  const gc = new GarbageCollector({ gc: state, uploads }, ledger, { now, activeFills: opts.activeFills, ...(opts.events ? { events: opts.events } : {}) });
  t.teardown(async () => {
    await registry.close();
    await close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A blob pushed into a local repository (monolithic), or stored as cached content of `repo`. */
  async function blob(repo: string, content: string, local = true): Promise<string> {
    const digest = sha(content);
    if (local) return (await registry.repository(repo).uploads.monolithic(digest, Readable.from([Buffer.from(content)]), Buffer.byteLength(content))).digest;
    const writer = await blobs.writer();
    await writer.write([Buffer.from(content)]);
    await ledger.commit(writer, digest, { local: false, repo });
    return digest;
  }

  /** An image manifest (config + layers) pushed to `repo`, or cached there when local is false. */
  async function image(repo: string, seed: string, o: { tag?: string; layers?: string[]; local?: boolean; subject?: Image } = {}): Promise<Image> {
    const local = o.local ?? true;
    const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', seed });
    const layerContents = o.layers ?? [`layer of ${seed}`];
    const config = await blob(repo, configBytes, local);
    const layers: string[] = [];
    for (const l of layerContents) layers.push(await blob(repo, l, local));
    const doc: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config, size: Buffer.byteLength(configBytes) },
      layers: layerContents.map((l, i) => ({ mediaType: OCI_LAYER, digest: layers[i], size: Buffer.byteLength(l) })),
    };
    if (o.subject) doc.subject = { mediaType: OCI_MANIFEST, digest: o.subject.digest, size: Buffer.byteLength(o.subject.body) };
    const body = JSON.stringify(doc);
    const digest = await manifest(repo, body, OCI_MANIFEST, o.tag, local);
    return { digest, config, layers, body };
  }

  async function index(repo: string, children: Image[], tag?: string): Promise<Image> {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c) => ({ mediaType: OCI_MANIFEST, digest: c.digest, size: Buffer.byteLength(c.body) })),
    });
    const digest = await manifest(repo, body, OCI_INDEX, tag, true);
    return { digest, config: '', layers: [], body };
  }

  async function manifest(repo: string, body: string, mediaType: string, tag: string | undefined, local: boolean): Promise<string> {
    const buf = Buffer.from(body);
    const digest = sha(buf);
    if (local) {
      await registry.repository(repo).manifests.put(tag ?? digest, buf, mediaType);
    } else {
      await registry.storeManifest(repo, digest, buf, parseManifest(buf, mediaType), tag ? [tag] : []);
    }
    return digest;
  }

  /** Whether the blob has both its row and its file (and, with `only`, neither when false). */
  async function stored(digest: string): Promise<boolean> {
    const row = (await metadata.getBlob(digest)) !== undefined;
    const file = existsSync(blobPath(dir, digest));
    if (row !== file) throw new Error(`${digest}: row ${row} but file ${file}`);
    return row;
  }

  return { dir, metadata, uploads, state, blobs, ledger, registry, gc, clock, now, blob, image, index, stored, fsck: () => fsck(state, blobs) };
}
