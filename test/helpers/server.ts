// Starts a real Wharf on 127.0.0.1:0 with a fresh data directory; closes it in t.teardown.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppDeps } from '../../src/app.js';
import { withDefaults } from '../../src/config/defaults.js';
import type { WharfConfig } from '../../src/config/schema.js';
import type { BlobStore } from '../../src/storage/blob-store.js';
import type { LogCapture } from './log-capture.js';

export interface TestServer {
  url: string;
  app: FastifyInstance;
  dataDir: string;
  config: WharfConfig;
  close(): Promise<void>;
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export function tempDir(prefix = 'wharf-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startWharf(
  t: Teardownable,
  overrides: Record<string, unknown> = {},
  opts: {
    dataDir?: string;
    keepData?: boolean;
    blobs?: (dataDir: string) => Promise<BlobStore>;
    /** The metadata database and stores to use (default: SQLite in the data directory). */
    stores?: (dataDir: string) => Pick<AppDeps, 'database' | 'metadata' | 'uploads'>;
    /** Receives the server's log (at info unless overrides set log.level). */
    logs?: LogCapture;
    /** Drives warm.images instead of real timers. */
    warmTimer?: AppDeps['warmTimer'];
    /** The clock of the statistics and the readiness answer (AppDeps.now). */
    now?: () => number;
    /** The clock of auth (AppDeps.authNow). */
    authNow?: () => number;
  } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const config = withDefaults({ log: { level: opts.logs ? 'info' : 'silent' }, ...overrides, storage: { path: dataDir } });
  const app = await buildApp(config, {
    ...(opts.blobs ? { blobs: await opts.blobs(dataDir) } : {}),
    ...(opts.stores ? opts.stores(dataDir) : {}),
    ...(opts.logs ? { logStream: opts.logs.stream } : {}),
    ...(opts.warmTimer ? { warmTimer: opts.warmTimer } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.authNow ? { authNow: opts.authNow } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await app.close();
  };
  t.teardown(async () => {
    await close();
    if (!opts.keepData && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return { url: `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}`, app, dataDir, config, close };
}
