// The dashboard in headless Chromium (Debian's chromium driven by playwright-core) against a real
// Wharf with auth on: the sign-in (a wrong password, a user outside the admin group, an admin), what
// the panels show next to what the API answers, a repository's tags, a reload that keeps the
// session, signing out; a screenshot of the signed-in page goes to test-results/dashboard.png.
// The page's Content-Security-Policy is enforced by the browser: a violation is a console error,
// and the test fails on any.
//
// Needs (Debian): apt-get install -y --no-install-recommends chromium
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';
import t, { type Test } from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startWharf, type TestServer } from '../helpers/server.js';
import { digestOf, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST } from '../helpers/http.js';
import { requireBinary } from '../helpers/container-clients.js';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { postWarm } from '../helpers/warm-upstream.js';

t.setTimeout(180_000);

const RESULTS = fileURLToPath(new URL('../../test-results/', import.meta.url));
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const ROOT = basic('root', 'root-pw');
/** A user name that is markup: shown back in the sign-in message, it must stay text. */
const MARKUP_USER = '<img src=x onerror="window.injected=1">';

const AUTH = {
  local: { namespaces: ['team'] },
  auth: {
    users: [
      { name: 'root', password: bcrypt.hashSync('root-pw', 4), groups: ['admin'] },
      { name: 'dev', password: bcrypt.hashSync('dev-pw', 4), groups: [] },
      { name: MARKUP_USER, password: bcrypt.hashSync('markup-pw', 4), groups: [] },
    ],
  },
};

/** What the page shows for a size (dashboard/app.js formatBytes), written out again here. */
function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toPrecision(3)} ${units[unit]}`;
}

/** Pushes an image (config, one layer of `layerSize` bytes, manifest) with Basic credentials. */
async function push(url: string, repo: string, tag: string, layerSize: number): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
  const layer = Buffer.alloc(layerSize, tag);
  for (const blob of [config, layer]) {
    const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digestOf(blob)}`, {
      method: 'POST',
      headers: { authorization: ROOT, 'content-type': 'application/octet-stream' },
      body: blob,
    });
    if (res.status !== 201) throw new Error(`blob push: ${res.status} ${await res.text()}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.length },
    layers: [{ mediaType: OCI_LAYER, digest: digestOf(layer), size: layer.length }],
  });
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { authorization: ROOT, 'content-type': OCI_MANIFEST },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push: ${res.status} ${await res.text()}`);
  return digestOf(manifest);
}

/** GET an /api path as root: the JSON, or undefined when this server has no such endpoint (404). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each caller reads the fields the contract names
async function apiAsRoot(url: string, path: string): Promise<Record<string, any> | undefined> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: ROOT } });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function openBrowser(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: requireBinary('chromium'), args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  return browser;
}

/** A new page whose console errors (CSP violations among them) and uncaught exceptions are collected. */
async function newPage(t: Test, browser: Browser, expectedStatuses: number[] = [401]): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    // The answers the page expects and handles (a wrong password: 401) are logged by Chromium too;
    // anything else (another failed request, a CSP violation, a script error) is a problem.
    const status = /^Failed to load resource: the server responded with a status of (\d+) /.exec(m.text())?.[1];
    if (m.type() === 'error' && !expectedStatuses.includes(Number(status))) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return { page, problems };
}

async function signIn(page: Page, user: string, password: string): Promise<void> {
  await page.locator('#username').fill(user);
  await page.locator('#password').fill(password);
  await page.locator('#sign-in-form button[type=submit]').click();
}

const noteOf = (page: Page, panel: string) => page.locator(`#${panel} > .note`);

/** A panel that loaded: content and no note. */
async function checkLoaded(t: Test, page: Page, panel: string): Promise<void> {
  await page.locator(`#${panel} > .content > *`).first().waitFor();
  t.equal(await noteOf(page, panel).textContent(), '', `${panel}: no note`);
}

t.test('the dashboard in Chromium: sign-in, repositories and tags, panels as the API says, sign out', async (t) => {
  // The reference registry as the upstream 'hub', for a cached repository and warm jobs.
  const hub = await startDockerRegistry(t);
  await pushTestImage(hub, 'library/base', '1', { seed: 'dashboard/base', layerSize: 200_000 });
  const s: TestServer = await startWharf(t, { ...AUTH, upstreams: [{ name: 'hub', url: hub.url, registry: 'docker.io' }] });
  const digest = await push(s.url, 'team/app', '1.0', 3000);
  await push(s.url, 'team/app', '1.1', 5000);
  await push(s.url, 'team/tools/cli', 'v2', 70_000);
  // A warm job that fills the cache from the upstream, and one that fails.
  const warmed = await postWarm(s.url, { images: ['docker.io/library/base:1'] }, { authorization: ROOT });
  t.equal(warmed.status, 200, warmed.text);
  t.match(warmed.events.at(-1), { type: 'summary', failures: [] });
  const failed = await postWarm(s.url, { images: ['docker.io/library/absent:1'] }, { authorization: ROOT });
  t.equal(failed.events.at(-1)?.['type'], 'summary', failed.text);
  // Pulls of the warmed image through Wharf: cache hits for the stats.
  const manifest = await fetch(`${s.url}/v2/docker.io/library/base/manifests/1`, {
    headers: { authorization: ROOT, accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  t.equal(manifest.status, 200, 'the warmed image is pulled');
  await manifest.arrayBuffer();
  // A collector run for the GC panel (a dry run deletes nothing).
  t.equal((await fetch(`${s.url}/api/gc?dryRun=true`, { method: 'POST', headers: { authorization: ROOT } })).status, 200);

  const browser = await openBrowser(t);
  const { page, problems } = await newPage(t, browser);
  await page.goto(`${s.url}/`);
  await page.locator('#sign-in').waitFor({ state: 'visible' });
  t.equal(await page.locator('#dashboard').isVisible(), false, 'nothing shown before signing in');

  await signIn(page, 'root', 'wrong-password');
  await t.resolves(page.locator('#sign-in-error').filter({ hasText: 'Wrong user name or password.' }).waitFor(), 'a wrong password is told');
  t.equal(await page.locator('#dashboard').isVisible(), false);
  t.equal(await page.locator('#password').inputValue(), 'wrong-password', 'the form keeps what was typed to correct it');

  await signIn(page, 'dev', 'dev-pw');
  await t.resolves(page.locator('#sign-in-error').filter({ hasText: 'dev is not a member of the admin group (auth.adminGroup).' }).waitFor(), 'a user outside the admin group is told');

  // Every request the page makes from here on, with its Authorization header.
  const sent: Array<{ method: string; path: string; authorization: string | undefined; body: string | null }> = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/api/') || url.pathname === '/auth/token') sent.push({ method: r.method(), path: url.pathname + url.search, authorization: r.headers()['authorization'], body: r.postData() });
  });
  await signIn(page, 'root', 'root-pw');
  await page.locator('#dashboard').waitFor({ state: 'visible' });
  t.equal(await page.locator('#who').textContent(), 'Signed in as root');
  // The password went once, to /auth/token for the api scope and a refresh token; storage holds tokens only.
  const signInRequest = sent.find((r) => r.path.startsWith('/auth/token?'));
  t.match(signInRequest, { method: 'GET', authorization: ROOT }, 'the password is exchanged at /auth/token');
  const query = new URLSearchParams(signInRequest?.path.split('?')[1]);
  t.equal(query.get('scope'), 'wharf:api:manage');
  t.equal(query.get('offline_token'), 'true');
  const storage = await page.evaluate(() => {
    const all = (s: { length: number; key(i: number): string | null; getItem(k: string): string | null }) =>
      Array.from({ length: s.length }, (_, i) => `${s.key(i)}=${s.getItem(s.key(i) ?? '') ?? ''}`).join('\n');
    const g = globalThis as unknown as Record<'sessionStorage' | 'localStorage', Parameters<typeof all>[0]>;
    return { session: all(g.sessionStorage), local: all(g.localStorage) };
  });
  t.notMatch(storage.session, 'root-pw', 'the password is not in sessionStorage');
  t.notMatch(storage.session, ROOT.slice('Basic '.length), 'nor the Basic value');
  t.equal(storage.local, '', 'nothing in localStorage');
  const kept = JSON.parse(storage.session.slice(storage.session.indexOf('=') + 1)) as { access: string; refresh: string };
  const claims = JSON.parse(Buffer.from(kept.access.split('.')[1] ?? '', 'base64url').toString()) as { access: unknown };
  t.strictSame(claims.access, [{ type: 'wharf', name: 'api', actions: ['manage'] }], 'the kept access token carries the api scope');
  t.type(kept.refresh, 'string', 'and a refresh token beside it');
  t.equal(await page.locator('#sign-in').isVisible(), false);
  t.equal(await page.locator('#password').inputValue(), '', 'the password field is emptied');

  // Repositories, as GET /api/repositories answers: the pushed ones and the one the warm job cached.
  const listing = (await apiAsRoot(s.url, '/api/repositories?n=100')) as { repositories: Array<{ name: string; kind: string; upstream: string | null; sizeBytes: number; tagCount: number }> };
  await checkLoaded(t, page, 'repositories');
  t.strictSame(listing.repositories.map((r) => r.name).sort(), ['docker.io/library/base', 'team/app', 'team/tools/cli'], 'the API lists the pushed and the cached repositories');
  t.strictSame(await page.locator('#repositories tbody button[data-repository]').allTextContents(), listing.repositories.map((r) => r.name), 'the page lists them in the same order');
  for (const repo of listing.repositories) {
    const row = page.locator('#repositories tbody tr').filter({ has: page.locator(`button[data-repository="${repo.name}"]`) });
    const size = row.locator('td[data-bytes]');
    t.ok(repo.sizeBytes > 0, `${repo.name}: has a size`);
    t.equal(await size.getAttribute('data-bytes'), String(repo.sizeBytes), `${repo.name}: the size the API returns`);
    t.equal(await size.textContent(), formatBytes(repo.sizeBytes), `${repo.name}: shown as ${formatBytes(repo.sizeBytes)}`);
    t.equal(await row.locator('td').nth(1).textContent(), repo.kind === 'cached' ? `cached from ${repo.upstream}` : repo.kind, `${repo.name}: kind`);
    t.equal(await row.locator('td').nth(3).textContent(), String(repo.tagCount), `${repo.name}: tag count`);
  }
  t.match(listing.repositories.find((r) => r.name === 'docker.io/library/base'), { kind: 'cached', upstream: 'hub' });

  // The tags of one repository.
  await page.locator('button[data-repository="team/app"]').click();
  await page.locator('#tags').waitFor({ state: 'visible' });
  t.equal(await page.locator('#tags-repository').textContent(), 'team/app');
  const tags = (await apiAsRoot(s.url, '/api/repositories/team/app/-/tags')) as { tags: Array<{ name: string; digest: string; sizeBytes: number }> };
  const rows = page.locator('#tags tbody tr');
  await rows.first().waitFor();
  t.strictSame(tags.tags.map((x) => x.name), ['1.0', '1.1'], 'the API lists both tags');
  t.strictSame(await rows.locator('td:first-child').allTextContents(), tags.tags.map((x) => x.name), 'one row per tag, in its order');
  const tagSizes = await Promise.all((await rows.locator('td[data-bytes]').all()).map((cell) => cell.getAttribute('data-bytes')));
  t.strictSame(tagSizes, tags.tags.map((x) => String(x.sizeBytes)), 'tag sizes');
  t.equal(await rows.filter({ has: page.locator('td:first-child', { hasText: /^1\.0$/ }) }).locator('.digest').getAttribute('title'), digest, "the tag's digest in full");

  // Cache, storage and upstreams come from GET /api/stats; warm jobs from GET /api/warm.
  const stats = await apiAsRoot(s.url, '/api/stats');
  if (!stats) return t.fail('GET /api/stats answers');
  for (const panel of ['cache', 'storage', 'upstreams']) await checkLoaded(t, page, panel);
  t.equal(await page.locator('#storage strong[data-bytes]').getAttribute('data-bytes'), String(stats.storage.totalBytes), 'total storage as the API says');
  const namespaces = stats.storage.namespaces as Array<{ namespace: string; bytes: number }>;
  t.strictSame(namespaces.map((n) => n.namespace).sort(), ['docker.io', 'team'], 'the API counts both namespaces');
  t.strictSame(await page.locator('#storage tbody td:first-child').allTextContents(), namespaces.map((n) => n.namespace), 'the page lists them');
  for (const ns of namespaces) {
    const row = page.locator('#storage tbody tr').filter({ has: page.locator('td:first-child', { hasText: ns.namespace }) });
    t.equal(await row.locator('td[data-bytes]').getAttribute('data-bytes'), String(ns.bytes), `namespace ${ns.namespace}`);
  }
  // The cache: hit ratio and counts as the API says, the chart a bar per minute that had requests.
  const facts = Object.fromEntries(
    await Promise.all((await page.locator('#cache dl dt').all()).map(async (dt) => [await dt.textContent(), await dt.locator('xpath=following-sibling::dd[1]').textContent()])),
  ) as Record<string, string>;
  const cache = stats.cache as { hits: number; misses: number; hitRatio: number | null };
  t.equal(facts['Hit ratio'], cache.hitRatio === null ? '—' : `${(cache.hitRatio * 100).toFixed(1)} %`, 'hit ratio as the API says');
  t.equal(facts['Hits'], cache.hits.toLocaleString('en'));
  t.equal(facts['Misses'], cache.misses.toLocaleString('en'));
  const history = stats.history as Array<{ hits: number; misses: number }>;
  t.ok(cache.hits > 0, 'the pulls made hits');
  t.equal(await page.locator('#cache svg rect.bar').count(), history.filter((h) => h.hits + h.misses > 0).length, 'a bar per minute with requests');
  // Upstreams: the hub's health, counts and rate limit.
  type UpstreamStats = { name: string; health: string; requests: number; bytesFetched: number; rateLimit: { limit: number | null; remaining: number | null } };
  const hubStats = (stats.upstreams as UpstreamStats[]).find((u) => u.name === 'hub');
  if (!hubStats) return t.fail('the API lists the upstream hub');
  const hubRow = page.locator('#upstreams tbody tr').filter({ has: page.locator('strong', { hasText: /^hub$/ }) });
  t.equal(await hubRow.locator('.health').textContent(), hubStats.health, `hub: ${hubStats.health}`);
  t.equal(await hubRow.locator('td').nth(2).textContent(), hubStats.requests.toLocaleString('en'), 'hub: requests');
  t.equal(await hubRow.locator('td[data-bytes]').getAttribute('data-bytes'), String(hubStats.bytesFetched), 'hub: bytes fetched');
  const { limit, remaining } = hubStats.rateLimit;
  t.equal(await hubRow.locator('td').nth(5).textContent(), remaining === null ? '—' : `${remaining}${limit === null ? '' : ` / ${limit}`}`, 'hub: rate limit left');
  t.ok(hubStats.requests > 0 && hubStats.bytesFetched > 200_000, 'the warm job went to the hub');

  // Warm jobs, as GET /api/warm answers: the one that failed and the one that filled the cache.
  const warm = (await apiAsRoot(s.url, '/api/warm')) as { jobs: Array<{ images: string[]; state: string; bytesFetched: number; failures: Array<{ image: string; reason: string }> }> };
  await checkLoaded(t, page, 'warm');
  t.equal(warm.jobs.length, 2);
  const warmRows = page.locator('#warm tbody tr');
  t.equal(await warmRows.count(), 2, 'a row per job');
  for (const job of warm.jobs) {
    const row = warmRows.filter({ has: page.locator('td.images', { hasText: job.images[0] }) });
    t.equal(await row.locator('.state').textContent(), job.state, `${job.images[0]}: ${job.state}`);
    t.equal(await row.locator('td[data-bytes]').first().getAttribute('data-bytes'), String(job.bytesFetched), `${job.images[0]}: bytes fetched`);
    const failure = job.failures[0];
    if (failure) t.equal(await row.locator('td.error').textContent(), `${failure.image}: ${failure.reason}`, 'the failure and its reason');
  }
  t.ok(warm.jobs.some((j) => j.bytesFetched > 200_000 && j.failures.length === 0), 'one job fetched the image');
  t.ok(warm.jobs.some((j) => j.failures.length === 1), 'one job failed');

  // GC runs (GET /api/gc): the dry run made above.
  await checkLoaded(t, page, 'gc');
  t.equal(await page.locator('#gc tbody tr').count(), 1);
  t.equal(await page.locator('#gc tbody tr td').nth(1).textContent(), 'dry run');

  // Every API call carried the access token as Bearer, never the password.
  const apiCalls = sent.filter((r) => r.path.startsWith('/api/'));
  t.ok(apiCalls.length >= 6, `${apiCalls.length} API calls`);
  t.strictSame(apiCalls.filter((r) => r.authorization !== `Bearer ${kept.access}`), [], 'each with Authorization: Bearer <the access token>');

  // A 401 (the access token ended early: the server restarted with a new key, say) is met with one
  // renewal by the refresh token, and the call is made again with the new token.
  let refused = 0;
  await page.route('**/api/gc', (route) => (refused++ === 0 ? route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid token', detail: null }] }) }) : route.fallback()));
  sent.length = 0;
  const retried = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/gc' && r.status() === 200);
  await page.locator('#refresh').click();
  await retried;
  const renewal = sent.find((r) => r.method === 'POST' && r.path === '/auth/token');
  const form = new URLSearchParams(renewal?.body ?? '');
  t.equal(form.get('grant_type'), 'refresh_token', 'renewed with the refresh token');
  t.equal(form.get('refresh_token'), kept.refresh);
  t.equal(form.get('scope'), 'wharf:api:manage');
  t.equal(renewal?.authorization, undefined, 'no password with it');
  const gcCalls = sent.filter((r) => r.path === '/api/gc');
  t.equal(gcCalls.length, 2, 'the refused call is made once more');
  t.not(gcCalls[1]?.authorization, gcCalls[0]?.authorization, 'with the new access token');
  t.match(gcCalls[1]?.authorization, /^Bearer ey/);
  t.equal(await page.locator('#dashboard').isVisible(), true, 'still signed in');
  await page.unroute('**/api/gc');

  mkdirSync(RESULTS, { recursive: true });
  const shot = `${RESULTS}dashboard.png`;
  await page.screenshot({ path: shot, fullPage: true });
  t.comment(`screenshot of the signed-in dashboard: ${shot}`);

  // A reload keeps the session (sessionStorage of this tab).
  await page.reload();
  await page.locator('#dashboard').waitFor({ state: 'visible' });
  t.equal(await page.locator('#who').textContent(), 'Signed in as root', 'still signed in after a reload');

  await page.locator('#sign-out').click();
  await page.locator('#sign-in').waitFor({ state: 'visible' });
  t.equal(await page.locator('#dashboard').isVisible(), false, 'signed out: the data is hidden');
  t.equal(await page.locator('#dashboard .content > *').count(), 0, 'and removed from the page');
  t.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length), 0, 'the tokens are forgotten');
  await page.reload();
  await page.locator('#sign-in').waitFor({ state: 'visible' });
  t.equal(await page.locator('#dashboard').isVisible(), false, 'a reload after signing out asks again');

  t.strictSame(problems, [], 'no console errors, CSP violations or exceptions');
});

t.test('the dashboard with auth off opens without a sign-in; a panel whose endpoint is missing says so', async (t) => {
  const s = await startWharf(t, { local: { namespaces: ['team'] } });
  const browser = await openBrowser(t);
  const { page, problems } = await newPage(t, browser, [404]);
  // A server without GET /api/warm (an older one behind the same page): the 404 it would answer.
  let asked = 0;
  await page.route('**/api/warm', (route) => {
    asked++;
    return route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'no endpoint GET /api/warm', detail: null }] }) });
  });
  await page.goto(`${s.url}/`);
  await page.locator('#dashboard').waitFor({ state: 'visible' });
  t.match(await page.locator('#who').textContent(), /Auth is off/);
  t.equal(await page.locator('#sign-out').isVisible(), false, 'nothing to sign out of');
  t.equal(await page.locator('#sign-in').isVisible(), false);
  await t.resolves(noteOf(page, 'warm').filter({ hasText: 'Not available on this server.' }).waitFor(), 'warm: "not available"');
  t.equal(asked, 1);
  for (const panel of ['repositories', 'cache', 'storage', 'upstreams', 'gc']) await checkLoaded(t, page, panel);
  t.equal(await page.locator('#repositories .content').textContent(), 'No repositories yet.');
  t.strictSame(problems, [], 'no console error but the 404');
});

t.test('markup in what the page shows stays text', async (t) => {
  const s = await startWharf(t, AUTH);
  const browser = await openBrowser(t);
  const { page, problems } = await newPage(t, browser);
  await page.goto(`${s.url}/`);
  await page.locator('#sign-in').waitFor({ state: 'visible' });

  // A user name is shown back by the sign-in: from the real server.
  await signIn(page, MARKUP_USER, 'markup-pw');
  const error = page.locator('#sign-in-error');
  await error.filter({ hasText: 'is not a member' }).waitFor();
  t.equal(await error.textContent(), `${MARKUP_USER} is not a member of the admin group (auth.adminGroup).`, 'the name as text');
  t.equal(await page.locator('#sign-in-error *').count(), 0, 'no element made from it');

  // Names, messages and reasons that a server passes on from clients and upstreams (an upstream's
  // name and error text, warm images and failure reasons): the API's answers replaced with markup.
  const evil = '<img src=x onerror="window.injected=2"><b>bold</b>';
  await page.route('**/api/stats', (route) =>
    route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({
        cache: { hits: 1, misses: 1, coalesced: 0, stale: 0, hitRatio: 0.5, bytesServed: 10, bytesServedFromCache: 5, fillsInFlight: 0 },
        upstreams: [{ name: evil, url: evil, requests: 1, errors: 1, bytesFetched: 5, lastError: evil, lastErrorAt: new Date().toISOString(), health: `x" onclick="${evil}`, rateLimit: { limit: 100, remaining: 99 } }],
        storage: { totalBytes: 10, namespaces: [{ namespace: evil, bytes: 10, repositories: 1 }] },
        history: [{ at: new Date().toISOString(), hits: 1, misses: 1, bytesFetched: 5 }],
      }),
    }),
  );
  await page.route('**/api/warm', (route) =>
    route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({
        jobs: [{ id: evil, images: [evil], state: evil, startedAt: null, finishedAt: null, manifests: 0, blobs: 0, bytesFetched: 0, bytesCached: 0, failures: [{ image: evil, reason: evil }] }],
      }),
    }),
  );
  await signIn(page, 'root', 'root-pw');
  await page.locator('#upstreams tbody tr').waitFor();
  await page.locator('#warm tbody tr').waitFor();
  await page.locator('#storage tbody tr').waitFor();
  t.equal(await page.locator('#upstreams tbody strong').textContent(), evil, 'upstream name as text');
  t.equal(await page.locator('#upstreams tbody .error').textContent(), evil, 'upstream error as text');
  t.equal(await page.locator('#storage tbody td').first().textContent(), evil, 'namespace as text');
  t.equal(await page.locator('#warm tbody .images').textContent(), evil, 'warm image as text');
  t.equal(await page.locator('#warm tbody td.error').textContent(), `${evil}: ${evil}`, 'failure reason as text');
  t.equal(await page.locator('main img, main b, main [onerror], main [onclick]').count(), 0, 'no element made from the strings');
  t.equal(await page.evaluate(() => (globalThis as { injected?: number }).injected), undefined, 'no handler ran');
  t.strictSame(problems, []);
});
