// warm.images on a schedule, driven by the test's own timer: a tag pattern is expanded from the tags the
// upstream lists, each match is fetched into the cache; after a tag moves upstream, the next run fetches
// the new digest's blobs, logs `tag moved` and lists the move with the job.
import t from 'tap';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { LogCapture } from '../helpers/log-capture.js';
import { startWharf } from '../helpers/server.js';
import { stored } from '../helpers/warm-upstream.js';
import type { WarmTimer } from '../../src/warm/warm-schedule.js';

t.setTimeout(300_000);

interface Job {
  images: string[];
  state: string;
  trigger: string;
  blobs: number;
  bytesFetched: number;
  bytesCached: number;
  failures: unknown[];
  moved: Array<{ image: string; from: string; to: string }>;
}

t.test('a scheduled warm with a tag pattern picks up a moved tag', async (t) => {
  const own = await startDockerRegistry(t);
  const v31 = await pushTestImage(own, 'library/sched', '3.1', { seed: 'sched/3.1' });
  const v32 = await pushTestImage(own, 'library/sched', '3.2', { seed: 'sched/3.2' });
  const v40 = await pushTestImage(own, 'library/sched', '4.0', { seed: 'sched/4.0' });
  let run: (() => Promise<void>) | undefined;
  let every: number | undefined;
  const timer: WarmTimer = (ms, fn) => {
    every = ms;
    run = fn;
    return () => (run = undefined);
  };
  const logs = new LogCapture();
  const wharf = await startWharf(
    t,
    {
      upstreams: [{ name: 'hub', url: own.url, registry: 'docker.io' }],
      warm: { images: ['docker.io/library/sched:3.*'], interval: '6h' },
    },
    { warmTimer: timer, logs },
  );
  t.equal(every, 6 * 3_600_000, 'every warm.interval');
  t.ok(run, 'the schedule is started with the server');
  const jobs = async (): Promise<Job[]> => ((await (await fetch(`${wharf.url}/api/warm`)).json()) as { jobs: Job[] }).jobs;

  await run!();
  const [first] = await jobs();
  t.match(first, { images: ['docker.io/library/sched:3.*'], state: 'done', trigger: 'schedule', blobs: v31.blobs.length + v32.blobs.length, bytesCached: 0, failures: [], moved: [] });
  for (const b of [...v31.blobs, ...v32.blobs]) t.ok(stored(wharf.dataDir, b.digest), `${b.digest} warmed`);
  for (const b of v40.blobs) t.notOk(stored(wharf.dataDir, b.digest), 'a tag the pattern does not match is left alone');

  // 3.2 moves upstream; the next run (within the tag's TTL: warming asks the upstream anyway) fetches it.
  const moved = await pushTestImage(own, 'library/sched', '3.2', { seed: 'sched/3.2-rebuilt' });
  await run!();
  const [second] = await jobs();
  const fresh = moved.blobs.filter((b) => !v32.blobs.some((o) => o.digest === b.digest));
  t.match(second, { state: 'done', trigger: 'schedule', bytesFetched: fresh.reduce((n, b) => n + b.size, 0) });
  t.same(second?.moved, [{ image: 'docker.io/library/sched:3.2', from: v32.manifestDigest, to: moved.manifestDigest }], 'the move is listed with the job');
  for (const b of moved.blobs) t.ok(stored(wharf.dataDir, b.digest), `${b.digest} of the new 3.2 warmed`);
  const line = logs.lines.find((l) => l.msg?.toString().startsWith('tag moved'));
  t.match(line, { component: 'warm', image: 'docker.io/library/sched:3.2', from: v32.manifestDigest, to: moved.manifestDigest }, 'and logged');
  const pulled = await fetch(`${wharf.url}/v2/docker.io/library/sched/manifests/3.2`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  await pulled.arrayBuffer();
  t.equal(pulled.headers.get('docker-content-digest'), moved.manifestDigest, 'a pull now gets the new digest');
});

t.test('warm.images that name no upstream registry are refused at start', async (t) => {
  const own = await startDockerRegistry(t);
  const { warmImageProblems } = await import('../../src/warm/warm-config.js');
  const { withDefaults } = await import('../../src/config/defaults.js');
  const config = withDefaults({ upstreams: [{ name: 'hub', url: own.url, registry: 'docker.io' }], warm: { images: ['alpine:3', 'quay.io/x/y:1', 'Bad Name'] } });
  t.same(warmImageProblems(config), [
    '1: quay.io/x/y:1: no upstream is configured for registry quay.io (upstreams[].registry)',
    '2: image "Bad Name": "library/Bad Name" is not a repository name (lowercase letters, digits and separators . _ __ - in components joined by /)',
  ]);
});
