// How `wharf warm` shows a job's progress: on a terminal, a bar per image and one overall (cli-progress,
// redrawn in place); elsewhere (a log, a pipe, CI) one plain line per image as it finishes.
import cliProgress from 'cli-progress';
import type { ImageProgress, WarmEvent } from '../warm/warm-job.js';
import type { Output } from './command.js';
import { formatBytes } from './format-bytes.js';

const counts = (p: ImageProgress): string =>
  `${p.manifests} manifests, ${p.blobs}/${p.blobsTotal} blobs, ${formatBytes(p.bytesFetched)} fetched, ${formatBytes(p.bytesCached)} already cached`;

export class WarmDisplay {
  private readonly bars: cliProgress.MultiBar | undefined;
  private overall: cliProgress.SingleBar | undefined;
  private readonly perImage = new Map<string, { bar?: cliProgress.SingleBar; last: ImageProgress }>();

  constructor(private readonly out: Output & Partial<NodeJS.WriteStream>) {
    if (out.isTTY === true) {
      this.bars = new cliProgress.MultiBar(
        {
          stream: out as NodeJS.WriteStream,
          format: '{bar} {name}  {blobs} blobs  {fetched} fetched  {cached} cached  {state}',
          barsize: 20,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          autopadding: true,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  event(e: WarmEvent): void {
    if (e.type === 'start') {
      if (this.bars) this.overall = this.bars.create(0, 0, this.payload('all images', 0, 0, 0, 0, 'resolving'));
      else this.out.write(`warm job ${e.jobId}: ${e.images.length} image${e.images.length === 1 ? '' : 's'}\n`);
      return;
    }
    if (e.type !== 'image') return;
    const { type: _type, ...progress } = e;
    const known = this.perImage.get(e.image) ?? { last: progress };
    known.last = progress;
    this.perImage.set(e.image, known);
    if (this.bars) {
      const payload = this.payload(e.image, e.blobs, e.blobsTotal, e.bytesFetched, e.bytesCached, e.state === 'failed' ? `failed: ${e.error ?? ''}` : e.state);
      known.bar ??= this.bars.create(0, 0, payload);
      known.bar.setTotal(Math.max(e.blobsTotal, 1));
      known.bar.update(e.state === 'done' ? Math.max(e.blobsTotal, 1) : e.blobs, payload);
      this.updateOverall();
    } else if (e.state === 'done') {
      this.out.write(`done    ${e.image}: ${counts(progress)}\n`);
    } else if (e.state === 'failed') {
      this.out.write(`failed  ${e.image}: ${e.error ?? 'unknown reason'}\n`);
    }
  }

  stop(): void {
    this.bars?.stop();
  }

  private updateOverall(): void {
    if (!this.overall) return;
    const all = [...this.perImage.values()].map((v) => v.last);
    const sum = (k: 'blobs' | 'blobsTotal' | 'bytesFetched' | 'bytesCached') => all.reduce((n, p) => n + p[k], 0);
    const finished = all.filter((p) => p.state === 'done' || p.state === 'failed').length;
    const state = `${finished}/${all.length} images finished`;
    this.overall.setTotal(Math.max(sum('blobsTotal'), 1));
    this.overall.update(sum('blobs'), this.payload('all images', sum('blobs'), sum('blobsTotal'), sum('bytesFetched'), sum('bytesCached'), state));
  }

  private payload(name: string, blobs: number, total: number, fetched: number, cached: number, state: string): Record<string, string> {
    return { name, blobs: `${blobs}/${total}`, fetched: formatBytes(fetched), cached: formatBytes(cached), state };
  }
}
