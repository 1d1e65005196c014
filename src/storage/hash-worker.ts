// Hashing off the event loop: a worker thread computes digests of streams fed to it chunk by chunk,
// so a blob fill's SHA-256 runs on another core while this thread moves bytes. One worker per owner
// (no module-global state); sessions are multiplexed over it by id.
import { Worker } from 'node:worker_threads';
import type { DigestAlgorithm } from '../registry/digest.js';

// Plain JavaScript, evaluated in the worker: no loader or build step involved.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'start') hashes.set(m.id, createHash(m.algorithm));
  else if (m.type === 'data') {
    const h = hashes.get(m.id);
    if (h) h.update(new Uint8Array(m.buf));
    parentPort.postMessage({ type: 'ack', id: m.id, bytes: m.buf.byteLength });
  } else if (m.type === 'end') {
    const h = hashes.get(m.id);
    hashes.delete(m.id);
    parentPort.postMessage({ type: 'digest', id: m.id, hex: h ? h.digest('hex') : null });
  } else if (m.type === 'drop') hashes.delete(m.id);
});
`;

/** Bytes a session may have in flight to the worker before `update` waits. */
const MAX_IN_FLIGHT = 8 * 1024 * 1024;

interface Session {
  inFlight: number;
  waiters: Array<() => void>;
  result?: (hex: string | null) => void;
}

export class HashWorker {
  private worker: Worker | undefined;
  private next = 0;
  private readonly sessions = new Map<number, Session>();

  /** Starts hashing a stream; the returned session takes its bytes in order. */
  start(algorithm: DigestAlgorithm): HashSession {
    const worker = this.ensure();
    const id = ++this.next;
    const session: Session = { inFlight: 0, waiters: [] };
    this.sessions.set(id, session);
    worker.postMessage({ type: 'start', id, algorithm });
    return {
      update: async (chunk: Buffer) => {
        // A copy the worker owns (transferred, not cloned again).
        const buf = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.length) as ArrayBuffer;
        session.inFlight += buf.byteLength;
        worker.postMessage({ type: 'data', id, buf }, [buf]);
        while (session.inFlight > MAX_IN_FLIGHT) await new Promise<void>((r) => session.waiters.push(r));
      },
      digest: () =>
        new Promise<string>((resolve, reject) => {
          session.result = (hex) => (hex === null ? reject(new Error('hash session lost')) : resolve(`${algorithm}:${hex}`));
          worker.postMessage({ type: 'end', id });
        }),
      drop: () => {
        this.sessions.delete(id);
        worker.postMessage({ type: 'drop', id });
      },
    };
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (m: { type: 'ack' | 'digest'; id: number; bytes?: number; hex?: string | null }) => {
      const session = this.sessions.get(m.id);
      if (!session) return;
      if (m.type === 'ack') {
        session.inFlight -= m.bytes ?? 0;
        if (session.inFlight <= MAX_IN_FLIGHT) for (const w of session.waiters.splice(0)) w();
      } else {
        this.sessions.delete(m.id);
        session.result?.(m.hex ?? null);
      }
    });
    worker.on('error', () => {
      // Every session in progress fails; the next start() gets a new worker.
      this.worker = undefined;
      for (const [id, s] of this.sessions) {
        this.sessions.delete(id);
        s.result?.(null);
        for (const w of s.waiters.splice(0)) w();
      }
    });
    this.worker = worker;
    return worker;
  }
}

export interface HashSession {
  /** Feeds the next bytes; waits while too many are still being hashed. */
  update(chunk: Buffer): Promise<void>;
  /** The digest of everything fed, as `<algorithm>:<hex>`. */
  digest(): Promise<string>;
  /** Abandons the session. */
  drop(): void;
}
