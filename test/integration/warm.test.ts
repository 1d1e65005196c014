// Pre-warming through POST /api/warm against the real reference registry: a multi-platform index with a
// signature (pushed with the referrers tag schema, docker-registry having no referrers API) is fetched
// into the cache as pulls would fetch it; a second warm finds everything cached; a platform filter warms
// only that child's blobs; an image the upstream lacks fails with its reason; bad bodies are 400s.
import t from 'tap';
import { startDockerRegistry } from '../helpers/docker-registry.js';
import { hubWharf, req, ociError } from '../helpers/proxy-http.js';
import { startWharf } from '../helpers/server.js';
import { postWarm, pushWarmImage, stored, type NdjsonEvent } from '../helpers/warm-upstream.js';

t.setTimeout(300_000);

const summaryOf = (events: NdjsonEvent[]) => {
  const { type: _type, ...summary } = events.find((e) => e.type === 'summary') ?? { type: 'none' };
  return summary as unknown as Summary;
};

interface Summary {
  images: number;
  manifests: number;
  blobs: number;
  bytesFetched: number;
  bytesCached: number;
  failures: Array<{ image: string; reason: string }>;
}

t.test('warm every platform with referrers, then again: everything already cached', async (t) => {
  const own = await startDockerRegistry(t);
  const image = await pushWarmImage(own, 'library/multi', 'v1', 'warm/multi');
  const wharf = await hubWharf(t, own);

  const first = await postWarm(wharf.url, { images: ['multi:v1'], referrers: true });
  t.equal(first.status, 200, first.text);
  t.equal(first.contentType, 'application/x-ndjson');
  const start = first.events[0];
  t.equal(start?.type, 'start');
  t.same(start?.images, ['multi:v1']);
  t.match(start?.jobId, /^[0-9a-f-]{36}$/);
  const states = first.events.filter((e) => e.type === 'image').map((e) => e.state);
  t.equal(states[0], 'resolving');
  t.ok(states.includes('fetching'));
  t.equal(states.at(-1), 'done');
  const last = first.events.filter((e) => e.type === 'image').at(-1)!;
  t.equal(last.image, 'multi:v1');
  t.equal(last.blobsTotal, image.allBlobs.length);
  t.equal(first.events.at(-1)?.type, 'summary', 'the summary ends the stream');
  const s1 = summaryOf(first.events);
  // The index, two platform images, the referrers tag schema's index and the signature.
  t.same(s1, { images: 1, manifests: 5, blobs: image.allBlobs.length, bytesFetched: image.allBytes, bytesCached: 0, failures: [] });
  for (const d of image.allBlobs) t.ok(stored(wharf.dataDir, d), `blob ${d} is in the cache`);

  const second = await postWarm(wharf.url, { images: ['docker.io/library/multi:v1'], allPlatforms: true, referrers: true });
  t.same(summaryOf(second.events), { images: 1, manifests: 5, blobs: image.allBlobs.length, bytesFetched: 0, bytesCached: image.allBytes, failures: [] }, 'the second warm fetches nothing');

  // With the upstream gone, every manifest and blob of the image is served from the cache.
  const blobGets = await own.countRequests({ method: 'GET', pathIncludes: '/blobs/sha256:' });
  t.equal(blobGets, image.allBlobs.length, 'one upstream GET per blob over both warms');
  await own.stop();
  for (const d of image.allBlobs) t.equal((await req(`${wharf.url}/v2/multi/blobs/${d}`)).status, 200, `blob ${d} served with the upstream down`);
  for (const c of image.index.children) t.equal((await req(`${wharf.url}/v2/multi/manifests/${c.digest}`)).status, 200);
  t.equal((await req(`${wharf.url}/v2/multi/manifests/${image.referrer.digest}`)).status, 200, 'the signature is cached');

  const jobs = (await (await fetch(`${wharf.url}/api/warm`)).json()) as { jobs: Array<Record<string, unknown>> };
  t.equal(jobs.jobs.length, 2);
  const [newest] = jobs.jobs;
  t.match(newest, { images: ['docker.io/library/multi:v1'], state: 'done', manifests: 5, blobs: image.allBlobs.length, bytesFetched: 0, bytesCached: image.allBytes, failures: [] });
  t.match(newest?.startedAt, /^\d{4}-\d\d-\d\dT/);
  t.match(newest?.finishedAt, /^\d{4}-\d\d-\d\dT/);
});

t.test('--platform linux/amd64 warms only that child', async (t) => {
  const own = await startDockerRegistry(t);
  const image = await pushWarmImage(own, 'library/multi', 'v1', 'warm/platform');
  const wharf = await hubWharf(t, own);
  const res = await postWarm(wharf.url, { images: ['docker.io/library/multi:v1'], platforms: ['linux/amd64'] });
  const bytes = image.index.blobs.filter((b) => image.amd64.includes(b.digest)).reduce((n, b) => n + b.size, 0);
  t.same(summaryOf(res.events), { images: 1, manifests: 2, blobs: image.amd64.length, bytesFetched: bytes, bytesCached: 0, failures: [] });
  for (const d of image.amd64) t.ok(stored(wharf.dataDir, d), `amd64 blob ${d} cached`);
  for (const d of image.arm64) t.notOk(stored(wharf.dataDir, d), `arm64 blob ${d} not fetched`);
  t.notOk(stored(wharf.dataDir, image.referrer.blobs[1]!), 'no referrers unless asked');

  const none = await postWarm(wharf.url, { images: ['multi:v1'], platforms: ['linux/s390x'] });
  const failure = summaryOf(none.events).failures[0];
  t.match(failure?.reason, /no manifest for the platforms asked .*linux\/amd64, linux\/arm64/);
});

t.test('a missing image fails with its reason; the others are warmed', async (t) => {
  const own = await startDockerRegistry(t);
  const image = await pushWarmImage(own, 'library/multi', 'v1', 'warm/missing');
  const wharf = await hubWharf(t, own);
  const res = await postWarm(wharf.url, { images: ['multi:v1', 'library/nothing:v9', 'quay.io/org/app:1', 'multi@sha256:' + 'a'.repeat(64)] });
  const s = summaryOf(res.events);
  t.equal(s.images, 4);
  t.equal(s.blobs, image.amd64.length + image.arm64.length);
  t.same(s.failures.map((f) => f.image).sort(), ['library/nothing:v9', 'multi@sha256:' + 'a'.repeat(64), 'quay.io/org/app:1'].sort());
  const reason = (image: string) => s.failures.find((f) => f.image === image)?.reason ?? '';
  t.match(reason('library/nothing:v9'), /library\/nothing/, reason('library/nothing:v9'));
  t.match(reason('quay.io/org/app:1'), /no upstream is configured for registry quay\.io/);
  const failed = res.events.filter((e) => e.type === 'image' && e.state === 'failed');
  t.equal(failed.length, 3);
  t.ok(failed.every((e) => typeof e.error === 'string' && e.error.length > 0), 'failed events carry the error');
  const jobs = (await (await fetch(`${wharf.url}/api/warm`)).json()) as { jobs: Array<{ state: string; failures: unknown[] }> };
  t.equal(jobs.jobs[0]?.state, 'failed');
  t.equal(jobs.jobs[0]?.failures.length, 3);
});

t.test('bad requests are 400 INVALID_REQUEST naming the problem', async (t) => {
  const own = await startDockerRegistry(t);
  const wharf = await hubWharf(t, own);
  const cases: Array<[unknown, RegExp]> = [
    ['not json', /must be JSON/],
    [[], /JSON object/],
    [{ images: [] }, /images must be a list of 1 to/],
    [{ images: ['Alpine:3'] }, /is not a repository name/],
    [{ images: ['alpine:3.20@sha256:xyz'] }, /not a sha256 or sha512 digest/],
    [{ images: ['alpine'], platforms: ['linux'] }, /is not os\/arch/],
    [{ images: ['alpine'], platforms: ['linux/amd64'], allPlatforms: true }, /not both/],
    [{ images: ['alpine'], concurrency: 0 }, /concurrency must be an integer from 1 to 32/],
    [{ images: ['alpine'], images2: 1 }, /unknown field "images2"/],
  ];
  for (const [body, message] of cases) {
    const res = await req(`${wharf.url}/api/warm`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
    t.equal(res.status, 400, `${JSON.stringify(body)} → 400`);
    const err = ociError(t, res);
    t.equal(err.code, 'INVALID_REQUEST');
    t.match(err.message, message);
  }
  const huge = await req(`${wharf.url}/api/warm`, { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024) });
  t.equal(huge.status, 413);
});

t.test('with auth on, warming is for admins, signed in with Basic credentials', async (t) => {
  const own = await startDockerRegistry(t);
  const image = await pushWarmImage(own, 'library/multi', 'v1', 'warm/auth');
  const { default: bcrypt } = await import('bcryptjs');
  const wharf = await startWharf(t, {
    upstreams: [{ name: 'hub', url: own.url, registry: 'docker.io', default: true }],
    auth: {
      users: [
        { name: 'root', password: bcrypt.hashSync('root-pw', 4), groups: ['admin'] },
        { name: 'dev', password: bcrypt.hashSync('dev-pw', 4) },
      ],
    },
  });
  const basic = (user: string, pw: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` });
  const anonymous = await postWarm(wharf.url, { images: ['multi:v1'] });
  t.equal(anonymous.status, 401, anonymous.text);
  const dev = await postWarm(wharf.url, { images: ['multi:v1'] }, basic('dev', 'dev-pw'));
  t.equal(dev.status, 403, dev.text);
  t.equal((await req(`${wharf.url}/api/warm`, { headers: basic('dev', 'dev-pw') })).status, 403);
  const root = await postWarm(wharf.url, { images: ['multi:v1'] }, basic('root', 'root-pw'));
  t.equal(root.status, 200, root.text);
  t.same(summaryOf(root.events).failures, []);
  t.equal(summaryOf(root.events).blobs, image.amd64.length + image.arm64.length);
  const listed = await req(`${wharf.url}/api/warm`, { headers: basic('root', 'root-pw') });
  t.equal(listed.status, 200);
  t.equal((JSON.parse(listed.text) as { jobs: unknown[] }).jobs.length, 1);
});
