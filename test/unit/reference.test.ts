import t from 'tap';
import { isValidName, isValidTag, parseDigest, parseReference } from '../../src/registry/reference.js';
import { tryParseDigest } from '../../src/oci/digest.js';
import { parseRange } from '../../src/registry/range.js';
import { RegistryError } from '../../src/registry/errors.js';

t.test('repository names follow the spec grammar and never allow traversal', async (t) => {
  for (const ok of ['a', 'library/alpine', 'a.b/c_d/e__f/g-h', 'a--b', `${'a'.repeat(255)}`]) t.ok(isValidName(ok), ok);
  for (const bad of ['', 'A', 'a/', '/a', 'a//b', '..', 'a/../b', '.a', 'a.', 'a_', 'a___b', '%2e', 'a b', `${'a'.repeat(256)}`]) {
    t.notOk(isValidName(bad), bad);
  }
});

t.test('tags follow [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}', async (t) => {
  for (const ok of ['latest', 'v1.0', '_x', 'A-b.C', 'a'.repeat(128)]) t.ok(isValidTag(ok), ok);
  for (const bad of ['', '.a', '-a', 'a/b', 'a'.repeat(129), 'a:b']) t.notOk(isValidTag(bad), bad);
});

t.test('digests: sha256 and sha512 only, lowercase hex of the right length', async (t) => {
  t.ok(tryParseDigest(`sha256:${'a'.repeat(64)}`));
  t.ok(tryParseDigest(`sha512:${'0'.repeat(128)}`));
  t.notOk(tryParseDigest(`sha256:${'A'.repeat(64)}`));
  t.notOk(tryParseDigest(`sha256:${'a'.repeat(63)}`));
  t.notOk(tryParseDigest(`md5:${'a'.repeat(32)}`));
  t.throws(() => parseDigest(`md5:${'a'.repeat(32)}`), /unsupported digest algorithm/);
  t.throws(() => parseDigest('sha256:../../etc'), RegistryError);
});

t.test('a reference is a tag or a digest', async (t) => {
  t.same(parseReference('v1'), { kind: 'tag', tag: 'v1' });
  t.same(parseReference(`sha256:${'b'.repeat(64)}`), { kind: 'digest', digest: `sha256:${'b'.repeat(64)}` });
  t.throws(() => parseReference('sha256:zz'), { code: 'DIGEST_INVALID' });
  t.throws(() => parseReference('../x'), { code: 'MANIFEST_INVALID' });
});

t.test('Range: single ranges, suffixes, clamping, and 416 past the end', async (t) => {
  t.same(parseRange('bytes=0-0', 10), { start: 0, end: 0 });
  t.same(parseRange('bytes=2-', 10), { start: 2, end: 9 });
  t.same(parseRange('bytes=-3', 10), { start: 7, end: 9 });
  t.same(parseRange('bytes=-30', 10), { start: 0, end: 9 });
  t.same(parseRange('bytes=5-100', 10), { start: 5, end: 9 });
  t.equal(parseRange('bytes=0-1,3-4', 10), undefined);
  t.equal(parseRange('items=0-1', 10), undefined);
  t.equal(parseRange(undefined, 10), undefined);
  t.throws(() => parseRange('bytes=10-', 10), { code: 'RANGE_INVALID', status: 416, headers: { 'content-range': 'bytes */10' } });
  t.throws(() => parseRange('bytes=-0', 10), { code: 'RANGE_INVALID' });
  t.throws(() => parseRange('bytes=500-0', 1000), { code: 'RANGE_INVALID', status: 416, headers: { 'content-range': 'bytes */1000' } }, 'last before first');
});
