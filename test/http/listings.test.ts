// GET /v2/<name>/tags/list and GET /v2/_catalog: lexical order, n and last, the Link header.
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { startWharf } from '../helpers/server.js';
import { OCI_MANIFEST, assertError, imageManifest, inject, pushBlob, type Res } from '../helpers/http.js';

const TAGS = ['latest', 'v1.0', 'A', '9', '10', 'a-b', 'a.b', 'a_b', 'Z', 'v1.10', 'v1.2'];
const SORTED = [...TAGS].sort(); // code-unit (byte) order for ASCII

async function tagAll(app: FastifyInstance, repo: string, tags: string[]) {
  const m = await imageManifest(app, repo, 'tagged');
  const query = tags.map((tag) => `tag=${tag}`).join('&');
  const res = await inject(app, 'PUT', `/v2/${repo}/manifests/${m.digest}?${query}`, { headers: { 'content-type': OCI_MANIFEST }, body: m.body });
  if (res.status !== 201) throw new Error(`tagging failed: ${res.status} ${res.text}`);
}

/** The target of a Link: rel="next" header, or undefined when there is none. */
function nextOf(res: Res): string | undefined {
  const link = res.header('link');
  if (link === undefined) return undefined;
  const m = /^<([^>]+)>;\s*rel="next"$/.exec(link);
  if (!m) throw new Error(`malformed Link header: ${link}`);
  return m[1];
}

t.test('tags/list returns every tag in lexical order', async (t) => {
  const { app } = await startWharf(t);
  await tagAll(app, 'org/app', TAGS);
  const res = await inject(app, 'GET', '/v2/org/app/tags/list');
  t.equal(res.status, 200);
  t.match(res.header('content-type'), /^application\/json/);
  t.same(res.json(), { name: 'org/app', tags: SORTED });
  t.same(SORTED.slice(0, 5), ['10', '9', 'A', 'Z', 'a-b'], 'byte order, not natural order');
  t.equal(res.header('link'), undefined, 'no Link without n');
});

t.test('tags/list?n=2 answers the first two and a Link to the next page', async (t) => {
  const { app } = await startWharf(t);
  await tagAll(app, 'repo', ['a', 'b', 'c', 'd', 'e']);
  const res = await inject(app, 'GET', '/v2/repo/tags/list?n=2');
  t.equal(res.status, 200);
  t.same(res.json(), { name: 'repo', tags: ['a', 'b'] });
  t.equal(res.header('link'), '</v2/repo/tags/list?n=2&last=b>; rel="next"');
});

t.test('following Link pages through every tag once, and the last page has no Link', async (t) => {
  const { app } = await startWharf(t);
  await tagAll(app, 'org/team/app', TAGS);
  const seen: string[] = [];
  let next: string | undefined = '/v2/org/team/app/tags/list?n=3';
  let pages = 0;
  while (next !== undefined && pages < 20) {
    const res = await inject(app, 'GET', next);
    t.equal(res.status, 200, `page ${pages}`);
    const body = res.json() as { name: string; tags: string[] };
    t.equal(body.name, 'org/team/app');
    t.ok(body.tags.length <= 3, 'at most n per page');
    seen.push(...body.tags);
    next = nextOf(res);
    if (next !== undefined) t.match(next, /^\/v2\/org\/team\/app\/tags\/list\?n=3&last=/, 'Link names the same repository and n');
    pages++;
  }
  t.same(seen, SORTED, 'all tags, in order, once');
  t.equal(pages, Math.ceil(SORTED.length / 3));
});

t.test('tags/list with last= starts after it (last excluded)', async (t) => {
  const { app } = await startWharf(t);
  await tagAll(app, 'repo', ['a', 'b', 'c', 'd', 'e']);
  t.same((await inject(app, 'GET', '/v2/repo/tags/list?last=b')).json(), { name: 'repo', tags: ['c', 'd', 'e'] });
  t.same((await inject(app, 'GET', '/v2/repo/tags/list?n=2&last=b')).json(), { name: 'repo', tags: ['c', 'd'] });
  t.same((await inject(app, 'GET', '/v2/repo/tags/list?last=bb')).json(), { name: 'repo', tags: ['c', 'd', 'e'] }, 'a last that is not a tag');
  t.same((await inject(app, 'GET', '/v2/repo/tags/list?last=e')).json(), { name: 'repo', tags: [] }, 'nothing after the last tag');
});

t.test('tags/list: no Link when the page reaches the end exactly', async (t) => {
  const { app } = await startWharf(t);
  await tagAll(app, 'repo', ['a', 'b', 'c', 'd']);
  const res = await inject(app, 'GET', '/v2/repo/tags/list?n=2&last=b');
  t.same(res.json(), { name: 'repo', tags: ['c', 'd'] });
  t.equal(res.header('link'), undefined);
  const all = await inject(app, 'GET', '/v2/repo/tags/list?n=4');
  t.same(all.json(), { name: 'repo', tags: ['a', 'b', 'c', 'd'] });
  t.equal(all.header('link'), undefined, 'n equal to the count');
  const more = await inject(app, 'GET', '/v2/repo/tags/list?n=100');
  t.same(more.json(), { name: 'repo', tags: ['a', 'b', 'c', 'd'] });
  t.equal(more.header('link'), undefined, 'n above the count');
});

t.test('tags/list?n=0 answers an empty list without Link', async (t) => {
  const { app } = await startWharf(t);
  await tagAll(app, 'repo', ['a', 'b']);
  const res = await inject(app, 'GET', '/v2/repo/tags/list?n=0');
  t.equal(res.status, 200);
  t.same(res.json(), { name: 'repo', tags: [] });
  t.equal(res.header('link'), undefined);
});

t.test('tags/list with a bad n answers 400', async (t) => {
  const { app } = await startWharf(t);
  await tagAll(app, 'repo', ['a']);
  for (const n of ['abc', '-1', '1.5', '1e3', '0x10', '99999999999999999999']) {
    assertError(t, await inject(app, 'GET', `/v2/repo/tags/list?n=${n}`), 400, undefined, `n=${n}`);
  }
});

t.test('tags/list of an unknown repository answers 404 NAME_UNKNOWN', async (t) => {
  const { app } = await startWharf(t);
  await tagAll(app, 'known', ['a']);
  assertError(t, await inject(app, 'GET', '/v2/unknown/tags/list'), 404, 'NAME_UNKNOWN');
  assertError(t, await inject(app, 'GET', '/v2/known/sub/tags/list'), 404, 'NAME_UNKNOWN', 'a child path of a known repo');
});

t.test('tags/list of a repository that holds only blobs answers 200 with no tags', async (t) => {
  const { app } = await startWharf(t);
  await pushBlob(app, 'blobs-only', 'just a blob');
  const res = await inject(app, 'GET', '/v2/blobs-only/tags/list');
  t.equal(res.status, 200);
  const body = res.json() as { name: string; tags: string[] | null };
  t.equal(body.name, 'blobs-only');
  t.same(body.tags ?? [], []);
});

t.test('_catalog lists repositories in lexical order', async (t) => {
  const { app } = await startWharf(t);
  const repos = ['zeta', 'alpha/beta', 'alpha', 'alpha-two', 'org/team/app', 'b'];
  for (const r of repos) await pushBlob(app, r, `blob of ${r}`);
  const res = await inject(app, 'GET', '/v2/_catalog');
  t.equal(res.status, 200);
  t.match(res.header('content-type'), /^application\/json/);
  t.same(res.json(), { repositories: [...repos].sort() });
  t.equal(res.header('link'), undefined);
});

t.test('_catalog?n=2 answers two repositories and a Link; following it pages through all once', async (t) => {
  const { app } = await startWharf(t);
  const repos = ['c/one', 'a', 'b/x', 'd', 'e'];
  for (const r of repos) await pushBlob(app, r, r);
  const first = await inject(app, 'GET', '/v2/_catalog?n=2');
  t.same(first.json(), { repositories: ['a', 'b/x'] });
  const link = first.header('link');
  t.ok(
    link === '</v2/_catalog?n=2&last=b%2Fx>; rel="next"' || link === '</v2/_catalog?n=2&last=b/x>; rel="next"',
    'Link to the next page after b/x',
    { link },
  );
  const seen: string[] = [];
  let next: string | undefined = '/v2/_catalog?n=2';
  let pages = 0;
  while (next !== undefined && pages < 10) {
    const res = await inject(app, 'GET', next);
    seen.push(...(res.json() as { repositories: string[] }).repositories);
    next = nextOf(res);
    pages++;
  }
  t.same(seen, [...repos].sort());
  t.equal(pages, 3);
});

t.test('_catalog with last= excludes it; n=0 is empty; bad n is 400', async (t) => {
  const { app } = await startWharf(t);
  for (const r of ['a', 'b', 'c']) await pushBlob(app, r, r);
  t.same((await inject(app, 'GET', '/v2/_catalog?last=a')).json(), { repositories: ['b', 'c'] });
  t.same((await inject(app, 'GET', '/v2/_catalog?n=1&last=a')).json(), { repositories: ['b'] });
  const zero = await inject(app, 'GET', '/v2/_catalog?n=0');
  t.equal(zero.status, 200);
  t.same(zero.json(), { repositories: [] });
  t.equal(zero.header('link'), undefined);
  for (const n of ['x', '-2', '2.0']) {
    assertError(t, await inject(app, 'GET', `/v2/_catalog?n=${n}`), 400, undefined, `n=${n}`);
  }
});

t.test('_catalog of an empty registry is an empty list', async (t) => {
  const { app } = await startWharf(t);
  const res = await inject(app, 'GET', '/v2/_catalog');
  t.equal(res.status, 200);
  t.same(res.json(), { repositories: [] });
});
