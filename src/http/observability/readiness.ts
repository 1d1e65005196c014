// GET /readyz (issue 13): ready when the metadata store answers a query and the blob store answers a
// stat (on S3, a HEAD). The answer is kept for a moment (cacheMs), and probes arriving meanwhile share
// it: a load balancer probing every node often cannot hammer the database or the bucket. A check
// that does not answer within timeoutMs counts as down: a probe never hangs on a lost connection.

export interface ReadinessCheck {
  /** What the check names in the answer: metadata, blobs. */
  name: string;
  /** Where, for the message (the SQLite file, PostgreSQL's host, the bucket). */
  where: string;
  check(): Promise<unknown>;
}

export interface ReadinessReport {
  ready: boolean;
  /** Per check: "ok", or why it is down. */
  checks: Record<string, string>;
  /** The failures in words, for the error message. */
  down: string[];
}

export interface ReadinessOptions {
  cacheMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

export class Readiness {
  private last: { at: number; report: Promise<ReadinessReport> } | undefined;
  private readonly cacheMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly checks: ReadinessCheck[],
    opts: ReadinessOptions = {},
  ) {
    this.cacheMs = opts.cacheMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.now = opts.now ?? Date.now;
  }

  report(): Promise<ReadinessReport> {
    const now = this.now();
    if (this.last && now - this.last.at < this.cacheMs) return this.last.report;
    const report = this.run();
    this.last = { at: now, report };
    return report;
  }

  private async run(): Promise<ReadinessReport> {
    const results = await Promise.all(this.checks.map((c) => this.one(c)));
    const checks: Record<string, string> = {};
    const down: string[] = [];
    this.checks.forEach((c, i) => {
      const error = results[i];
      checks[c.name] = error === undefined ? 'ok' : `down: ${error}`;
      if (error !== undefined) down.push(`${c.name} (${c.where}): ${error}`);
    });
    return { ready: down.length === 0, checks, down };
  }

  /** undefined when the check passed, else why not. */
  private async one(c: ReadinessCheck): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${this.timeoutMs} ms`), this.timeoutMs);
    });
    try {
      return await Promise.race([
        c.check().then(
          () => undefined,
          (err: unknown) => ((err as Error)?.message || String(err)).slice(0, 300),
        ),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
