// Where the log goes by default: standard output, one write per turn of the event loop instead of
// one per line. Every request writes a line (request-log.ts); a write(2) for each was a large part
// of what a cached manifest costs to serve. Lines logged during a turn are joined and written
// when it ends (setImmediate), synchronously and in order, so the log is as current as before
// and nothing is lost on SIGTERM or a crash: close() and the process's 'exit' write what is
// pending. Only a SIGKILL can lose lines, those of the turn it lands in.
import { writeSync } from 'node:fs';

/** A pino destination stream (write(line)). */
export class TurnBufferedDestination {
  private pending: string[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private readonly onExit = (): void => this.flush();

  constructor(private readonly fd = 1) {
    process.once('exit', this.onExit);
  }

  write(line: string): void {
    this.pending.push(line);
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      this.flush();
    });
  }

  /** Writes what is pending now. */
  flush(): void {
    if (this.pending.length === 0) return;
    const data = Buffer.from(this.pending.length === 1 ? (this.pending[0] as string) : this.pending.join(''));
    this.pending = [];
    let offset = 0;
    let waits = 0;
    while (offset < data.length) {
      try {
        offset += writeSync(this.fd, data, offset);
      } catch (err) {
        // A non-blocking pipe that is full: wait for the reader a little, as pino's own destination
        // does. Anything else (the reader is gone) leaves nowhere to say it: the lines are dropped.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++waits > 1000) return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
  }

  /** Writes what is pending and stops watching the process's exit. */
  close(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.flush();
    process.off('exit', this.onExit);
  }
}
