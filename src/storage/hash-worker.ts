// Hashing off the event loop: a worker thread takes the bytes of a stream in batches and hashes
// them, so a blob fill's SHA-256 runs on another core while this thread moves bytes between
// sockets. Message buffers travel back and forth (transferred, then reused), so a long fill
// allocates nothing new. One worker per owner (no module-global state); sessions are multiplexed
// over it by id.
import { Worker } from 'node:worker_threads';
import type { DigestAlgorithm } from '../oci/digest.js';

// Plain JavaScript, evaluated in the worker: no loader or build step involved.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const sessions = new Map();
const ACK_BYTES = 4 * 1024 * 1024;
const fail = (id, err) => {
  sessions.delete(id);
  parentPort.postMessage({ type: 'error', id, message: err.message });
};
parentPort.on('message', (m) => {
  const s = sessions.get(m.id);
  if (m.type === 'start') {
    try { sessions.set(m.id, { hash: createHash(m.algorithm), unacked: 0, spent: [] }); } catch (err) { fail(m.id, err); }
  } else if (m.type === 'data') {
    if (!s) return;
    const bytes = new Uint8Array(m.buf, 0, m.length);
    try {
      s.hash.update(bytes);
      // Acknowledged in batches: one message per few MiB, not per chunk.
      // Spent buffers go back with the acknowledgement, for the sender to fill again.
      s.unacked += bytes.length;
      s.spent.push(m.buf);
      if (s.unacked >= ACK_BYTES || m.settle) {
        parentPort.postMessage({ type: 'ack', id: m.id, bytes: s.unacked, bufs: s.spent }, s.spent);
        s.unacked = 0;
        s.spent = [];
      }
    } catch (err) { fail(m.id, err); }
  } else if (m.type === 'settle') {
    if (!s) return;
    parentPort.postMessage({ type: 'ack', id: m.id, bytes: s.unacked, bufs: s.spent }, s.spent);
    s.unacked = 0;
    s.spent = [];
  } else if (m.type === 'end') {
    if (!s) return parentPort.postMessage({ type: 'error', id: m.id, message: 'unknown hash session' });
    sessions.delete(m.id);
    parentPort.postMessage({ type: 'digest', id: m.id, hex: s.hash.digest('hex') });
  } else if (m.type === 'drop') sessions.delete(m.id);
});
`;

/** Bytes a session may have in flight to the worker before `update` waits. */
const MAX_IN_FLIGHT = 4 * 1024 * 1024;
/** Chunks are gathered into messages of at most this size (one copy, one message). */
const BATCH_BYTES = 1024 * 1024;
/** Buffers kept for reuse: enough for what may be in flight. */
const POOL_SIZE = 8;

interface Session {
  inFlight: number;
  batch: Buffer[];
  batchBytes: number;
  error?: Error;
  waiters: Array<() => void>;
  result?: { resolve: (digest: string) => void; reject: (err: Error) => void };
}

export class HashWorker {
  private worker: Worker | undefined;
  private next = 0;
  private readonly sessions = new Map<number, Session>();
  /** Message buffers the worker gave back, reused so a fill allocates no new memory as it runs. */
  private readonly pool: ArrayBuffer[] = [];

  /** Starts hashing a stream; the session takes its bytes in order. */
  start(algorithm: DigestAlgorithm): HashSession {
    const worker = this.ensure();
    const id = ++this.next;
    const session: Session = { inFlight: 0, batch: [], batchBytes: 0, waiters: [] };
    this.sessions.set(id, session);
    worker.postMessage({ type: 'start', id, algorithm });
    /** Posts the gathered chunks as one transferred copy; `settle` asks for an acknowledgement of everything. */
    const send = (settle: boolean) => {
      if (session.batchBytes === 0) {
        if (settle && session.inFlight > 0) worker.postMessage({ type: 'settle', id });
        return;
      }
      const length = session.batchBytes;
      const buf = (length <= BATCH_BYTES ? this.pool.pop() : undefined) ?? new ArrayBuffer(Math.max(length, BATCH_BYTES));
      const view = Buffer.from(buf, 0, length);
      let at = 0;
      for (const c of session.batch) at += c.copy(view, at);
      session.inFlight += length;
      session.batch = [];
      session.batchBytes = 0;
      worker.postMessage({ type: 'data', id, buf, length, settle }, [buf]);
    };
    const wake = () => {
      for (const w of session.waiters.splice(0)) w();
    };
    return {
      update: async (chunk: Buffer) => {
        if (session.error) throw session.error;
        if (session.batchBytes + chunk.length > BATCH_BYTES) send(false);
        session.batch.push(chunk);
        session.batchBytes += chunk.length;
        while (session.inFlight > MAX_IN_FLIGHT && !session.error) await new Promise<void>((r) => session.waiters.push(r));
        if (session.error) throw session.error;
      },
      settled: async () => {
        send(true);
        while (session.inFlight > 0 && !session.error) await new Promise<void>((r) => session.waiters.push(r));
        if (session.error) throw session.error;
      },
      digest: () =>
        new Promise<string>((resolve, reject) => {
          send(false);
          if (session.error) return reject(session.error);
          session.result = { resolve: (hex) => resolve(`${algorithm}:${hex}`), reject };
          worker.postMessage({ type: 'end', id });
        }),
      drop: () => {
        this.sessions.delete(id);
        wake();
        worker.postMessage({ type: 'drop', id });
      },
    };
  }

  async close(): Promise<void> {
    this.pool.length = 0;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (m: { type: 'ack' | 'digest' | 'error'; id: number; bytes?: number; bufs?: ArrayBuffer[]; hex?: string; message?: string }) => {
      for (const b of m.bufs ?? []) if (b.byteLength === BATCH_BYTES && this.pool.length < POOL_SIZE) this.pool.push(b);
      const session = this.sessions.get(m.id);
      if (!session) return;
      if (m.type === 'ack') {
        session.inFlight -= m.bytes ?? 0;
      } else if (m.type === 'digest') {
        this.sessions.delete(m.id);
        session.result?.resolve(m.hex as string);
      } else {
        session.error = new Error(`hashing or writing failed: ${m.message}`);
        this.sessions.delete(m.id);
        session.result?.reject(session.error);
      }
      for (const w of session.waiters.splice(0)) w();
    });
    worker.on('error', (err) => {
      // Every session in progress fails; the next start() gets a new worker.
      this.worker = undefined;
      for (const [id, s] of this.sessions) {
        this.sessions.delete(id);
        s.error = new Error(`hash worker failed: ${err.message}`);
        s.result?.reject(s.error);
        for (const w of s.waiters.splice(0)) w();
      }
    });
    this.worker = worker;
    return worker;
  }
}

export interface HashSession {
  /** Feeds the next bytes; waits while too many are still being processed. */
  update(chunk: Buffer): Promise<void>;
  /** Waits until every byte fed so far is hashed. */
  settled(): Promise<void>;
  /** The digest of everything fed, as `<algorithm>:<hex>`. */
  digest(): Promise<string>;
  /** Abandons the session. */
  drop(): void;
}

