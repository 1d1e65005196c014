// warm.images on a schedule: warmed once when the server starts, then every warm.interval. A run still
// going when the next is due is left to finish (the next one is skipped). Tags that moved since the last
// run are fetched and logged (`tag moved`), and listed with the job (GET /api/warm).
import type { WarmRequest } from './warm-request.js';
import type { WarmService } from './warm-service.js';

/** Runs `run` now and every `ms` milliseconds (0: only now); the returned function stops it. Tests pass their own. */
export type WarmTimer = (ms: number, run: () => Promise<void>) => () => void;

export const realTimer: WarmTimer = (ms, run) => {
  const first = setTimeout(() => void run(), 0);
  first.unref();
  const every = ms > 0 ? setInterval(() => void run(), ms).unref() : undefined;
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
};

export class WarmSchedule {
  private current: Promise<void> | undefined;
  private stop: (() => void) | undefined;

  constructor(
    private readonly service: WarmService,
    private readonly request: WarmRequest,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly timer: WarmTimer = realTimer,
  ) {}

  start(): void {
    this.stop = this.timer(this.intervalMs, () => this.runOnce());
  }

  /** One scheduled run, unless one is still going; resolves when it has ended. */
  runOnce(): Promise<void> {
    if (this.current) return this.current;
    const run = (async () => {
      try {
        await this.service.start(this.request, { trigger: 'schedule' }).done;
      } catch (err) {
        this.onError(err);
      }
    })();
    this.current = run.finally(() => (this.current = undefined));
    return this.current;
  }

  async close(): Promise<void> {
    this.stop?.();
    await this.current;
  }
}
