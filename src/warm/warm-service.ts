// Warm jobs of this process: started by POST /api/warm (`wharf warm`) and by warm.images on their
// schedule, listed by GET /api/warm (running ones and the last finished ones). Jobs live in the memory of
// the node that runs them; what they fetch is in the shared cache like any pull.
import { randomUUID } from 'node:crypto';
import { RegistryError } from '../registry/errors.js';
import { WarmJob, type MovedTag, type WarmEvent, type WarmJobView, type WarmSummary } from './warm-job.js';
import type { WarmRequest } from './warm-request.js';
import type { WarmSource } from './warm-source.js';

export interface WarmLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface WarmServiceOptions {
  log?: WarmLog;
  now?: () => number;
  /** Jobs running at once; more are refused (429) until one ends. */
  maxRunning?: number;
  /** Finished jobs kept for the list. */
  keep?: number;
}

export class WarmService {
  private readonly running = new Set<WarmJob>();
  private readonly runs = new Set<Promise<unknown>>();
  private finished: WarmJob[] = [];
  private closed = false;
  private readonly maxRunning: number;
  private readonly keep: number;

  constructor(
    private readonly source: WarmSource,
    private readonly opts: WarmServiceOptions = {},
  ) {
    this.maxRunning = opts.maxRunning ?? 4;
    this.keep = opts.keep ?? 20;
  }

  /**
   * Starts a job; `onEvent` gets its events (start, each image's progress, the summary). Throws
   * TOOMANYREQUESTS when maxRunning jobs run already, UNAVAILABLE once closing.
   */
  start(request: WarmRequest, opts: { trigger?: WarmJobView['trigger']; onEvent?: (event: WarmEvent) => void } = {}): { job: WarmJob; done: Promise<WarmSummary> } {
    if (this.closed) throw new RegistryError('UNAVAILABLE', 'the server is shutting down: no warm job is started');
    if (this.running.size >= this.maxRunning) {
      throw new RegistryError('TOOMANYREQUESTS', `${this.running.size} warm jobs are running, the most this server runs at once: try again when one has finished (GET /api/warm)`, {
        headers: { 'retry-after': '30' },
      });
    }
    const log = this.opts.log;
    const trigger = opts.trigger ?? 'api';
    const onMoved = (m: MovedTag): void => log?.info({ component: 'warm', image: m.image, from: m.from, to: m.to }, `tag moved: ${m.image} now ${m.to} (was ${m.from})`);
    const job = new WarmJob(randomUUID(), request, this.source, (event) => opts.onEvent?.(event), trigger, this.opts.now, onMoved);
    this.running.add(job);
    const done = job.run().then((summary) => {
      this.running.delete(job);
      this.finished = [job, ...this.finished].slice(0, this.keep);
      for (const f of summary.failures) log?.warn({ component: 'warm', jobId: job.id, image: f.image, reason: f.reason }, `warm of ${f.image} failed: ${f.reason}`);
      const { failures, ...totals } = summary;
      log?.info({ component: 'warm', jobId: job.id, trigger, ...totals, failed: failures.length }, `warm job finished: ${totals.images} images, ${totals.blobs} blobs, ${totals.bytesFetched} bytes fetched, ${totals.bytesCached} already cached`);
      return summary;
    });
    this.runs.add(done);
    void done.finally(() => this.runs.delete(done));
    return { job, done };
  }

  /** Running jobs, then finished ones, newest first. */
  list(): WarmJobView[] {
    const running = [...this.running].sort((a, b) => b.startedAt - a.startedAt);
    return [...running, ...this.finished].map((j) => j.view());
  }

  /** Running jobs start no more fetches; resolves once they have ended. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.running) job.abort('the server is shutting down');
    await Promise.all([...this.runs]);
  }
}
