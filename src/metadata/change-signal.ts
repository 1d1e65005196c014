// Removals made by one process on a store must reach the in-memory caches of every server on it: a
// `wharf gc` run while `wharf serve` holds hot manifests, or the collector of one server while
// another one serves the same data directory. The process that removed content bumps a generation
// in a small file beside the database; servers watch that file.
//
// Why a file and inotify: it costs nothing per request. The kernel says when the file is written
// (fs.watch, inotify on Linux) and nothing is read or queried on the request path; the cache is
// dropped within a moment of the collector's commit. Asking SQLite instead (PRAGMA data_version
// changes on every commit of another connection) would mean a query per request, or a timer and a
// window of staleness, and would fire on every write of another process (access-time flushes)
// rather than on removals only. Where inotify does not see other writers (a network filesystem),
// a stat of the file every `pollMs`, off the request path, notices the change instead.
import { closeSync, openSync, readFileSync, statSync, watch, writeSync, type FSWatcher, type Stats } from 'node:fs';

export interface ChangeWatch {
  close(): void;
}

export class ChangeSignal {
  private written: string | undefined;

  constructor(private readonly file: string) {}

  /** A new generation: every watcher of the store, in any process, drops what it holds in memory. */
  bump(): void {
    const next = `${this.generation() + 1} ${process.pid}\n`;
    // Written in place (truncate, write; no rename): a watch on the file keeps its inode.
    const fd = openSync(this.file, 'w');
    try {
      writeSync(fd, next);
    } finally {
      closeSync(fd);
    }
    this.written = next;
  }

  /**
   * Calls `onChange` when another process (or another ChangeSignal) bumps the generation; this
   * signal's own bumps are not reported back. Creates the file when there is none yet.
   */
  watch(onChange: () => void, opts: { pollMs?: number; onError?: (err: unknown) => void } = {}): ChangeWatch {
    closeSync(openSync(this.file, 'a'));
    let seen = this.read();
    let stamp = stampOf(statSync(this.file));
    let watcher: FSWatcher | undefined;
    const check = (): void => {
      let now: string;
      try {
        stamp = stampOf(statSync(this.file));
        now = this.read();
      } catch (err) {
        opts.onError?.(err);
        return;
      }
      // Empty: a bump between its truncate and its write (the write's event follows).
      if (now === seen || now === '') return;
      seen = now;
      if (now !== this.written) onChange();
    };
    const start = (): void => {
      try {
        watcher = watch(this.file, { persistent: false }, (event) => {
          check();
          // The file was replaced or removed: watch whatever now has its name.
          if (event === 'rename') {
            watcher?.close();
            start();
          }
        });
        watcher.on('error', (err) => opts.onError?.(err));
      } catch (err) {
        // No inotify here (or the file is gone): the poll still notices.
        watcher = undefined;
        opts.onError?.(err);
      }
    };
    start();
    const poll = setInterval(() => {
      try {
        if (stampOf(statSync(this.file)) !== stamp) check();
      } catch {
        // Gone for now: a bump creates it again.
      }
    }, opts.pollMs ?? 1000);
    poll.unref();
    return {
      close: () => {
        clearInterval(poll);
        watcher?.close();
      },
    };
  }

  private read(): string {
    try {
      return readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  }

  private generation(): number {
    const n = Number.parseInt(this.read(), 10);
    return Number.isFinite(n) ? n : 0;
  }
}

function stampOf(s: Stats): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}
