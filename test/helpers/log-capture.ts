// The pino output of a real Wharf (buildApp's logStream), parsed line by line; a test waits for the
// line it expects as it is written instead of sleeping.
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export class LogCapture {
  readonly lines: LogLine[] = [];
  private waiters: Array<() => void> = [];

  /** The pino destination. */
  readonly stream = {
    write: (text: string): void => {
      for (const part of text.split('\n')) if (part.trim()) this.lines.push(JSON.parse(part) as LogLine);
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    },
  };

  /** The request lines (one per request) for URLs containing `path`. */
  requests(path: string): LogLine[] {
    return this.lines.filter((l) => l.msg === 'request' && typeof l.url === 'string' && l.url.includes(path));
  }

  /** Resolves with the first line matching `match`, now or when it is written; rejects after `ms`. */
  async waitFor(match: (line: LogLine) => boolean, ms = 10_000): Promise<LogLine> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.lines.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such log line within ${ms} ms; lines:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
