// Image references as `wharf warm` and warm.images take them, normalised as docker does; tag patterns;
// platforms and which index children they select.
import t from 'tap';
import { formatImageRef, parseImageRef } from '../../src/warm/image-ref.js';
import { isTagGlob, tagMatcher } from '../../src/warm/tag-glob.js';
import { parsePlatform, platformMatches } from '../../src/warm/platform.js';
import { parseWarmRequest } from '../../src/warm/warm-request.js';

const D = 'sha256:' + 'ab'.repeat(32);

t.test('references are normalised the way docker normalises them', async (t) => {
  const cases: Array<[string, string]> = [
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['index.docker.io/library/alpine:3', 'docker.io/library/alpine:3'],
    ['registry-1.docker.io/alpine:3', 'docker.io/library/alpine:3'],
    [`ghcr.io/org/app@${D}`, `ghcr.io/org/app@${D}`],
    [`ghcr.io/org/app:1.2@${D}`, `ghcr.io/org/app:1.2@${D}`],
    ['localhost/team/app', 'localhost/team/app:latest'],
    ['Registry.Example:5000/team/app:v1', 'registry.example:5000/team/app:v1'],
    ['127.0.0.1:5001/x', '127.0.0.1:5001/x:latest'],
    ['quay.io/org/app:3.*', 'quay.io/org/app:3.*'],
  ];
  for (const [text, full] of cases) t.equal(formatImageRef(parseImageRef(text)), full, text);
  t.same(parseImageRef(`alpine@${D}`), { host: 'docker.io', path: 'library/alpine', digest: D }, 'a digest alone: no tag');
});

t.test('bad references are INVALID_REQUEST saying what is wrong', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /1 to 512 characters/],
    ['x'.repeat(513), /1 to 512 characters/],
    ['Alpine', /is not a repository name/],
    ['alpine:', /is not a tag/],
    ['alpine:bad tag', /is not a tag/],
    ['alpine@sha256:123', /not a sha256 or sha512 digest/],
    [`alpine:3.*@${D}`, /a tag pattern and a digest together/],
    ['bad_host.:5000/x', /is not a registry host/],
    ['ghcr.io/', /is not a repository name/],
    ['a/../b', /is not a repository name/],
  ];
  for (const [text, message] of cases) {
    t.throws(() => parseImageRef(text), { code: 'INVALID_REQUEST', message }, JSON.stringify(text.slice(0, 30)));
  }
});

t.test('tag patterns: * any run, ? one character, the rest literally', async (t) => {
  t.ok(isTagGlob('3.*'));
  t.ok(isTagGlob('v?'));
  t.notOk(isTagGlob('3.20'));
  t.notOk(isTagGlob('a*/b'));
  const m = tagMatcher('3.*');
  t.same(['3.1', '3.20', '3', '31', '4.3.1', '3.x-rc'].filter(m), ['3.1', '3.20', '3.x-rc']);
  t.same(['v1', 'v10', 'x1'].filter(tagMatcher('v?')), ['v1']);
});

t.test('platforms select index children; arm64 without a variant is v8', async (t) => {
  t.same(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.throws(() => parsePlatform('linux'), { code: 'INVALID_REQUEST' });
  t.throws(() => parsePlatform('linux/amd64/v1/x'), { code: 'INVALID_REQUEST' });
  const amd = [parsePlatform('linux/amd64')];
  t.ok(platformMatches(amd, { os: 'linux', architecture: 'amd64' }));
  t.ok(platformMatches(amd, { os: 'linux', architecture: 'amd64', variant: 'v3' }), 'any variant when none is asked');
  t.notOk(platformMatches(amd, { os: 'windows', architecture: 'amd64' }));
  t.notOk(platformMatches(amd, undefined));
  t.ok(platformMatches([parsePlatform('linux/arm64/v8')], { os: 'linux', architecture: 'arm64' }));
  t.notOk(platformMatches([parsePlatform('linux/arm/v7')], { os: 'linux', architecture: 'arm', variant: 'v6' }));
});

t.test('a request: every bad image listed at once, defaults filled in', async (t) => {
  t.throws(() => parseWarmRequest({ images: ['Bad', 'alpine', 'Worse'] }), { message: /image "Bad".*; image "Worse"/ });
  const r = parseWarmRequest({ images: ['alpine'] });
  t.same(r, { images: [{ text: 'alpine', ref: { host: 'docker.io', path: 'library/alpine', tag: 'latest' } }], referrers: false, concurrency: 4 });
  t.throws(() => parseWarmRequest({ images: new Array(1001).fill('alpine') }), { message: /1 to 1000/ });
});
