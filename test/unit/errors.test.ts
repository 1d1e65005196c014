import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOGUE, RegistryError, asRegistryError, asRegistryErrorOrFull } from '../../src/registry/errors.js';
import { InvalidDigestError } from '../../src/oci/digest.js';
import { BlobNotFoundError, DigestMismatchError, SizeMismatchError, StorageFullError } from '../../src/storage/storage-errors.js';

t.test('docs/errors.md lists every catalogue code with its status, and nothing else', async (t) => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| ([A-Z_]+) \| (\d{3}) \|/gm)) rows.set(m[1] as string, Number(m[2]));
  t.same([...rows.keys()].sort(), Object.keys(ERROR_CATALOGUE).sort());
  for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) t.equal(rows.get(code), status, code);
});

t.test('a RegistryError takes its status from the catalogue unless told otherwise', async (t) => {
  t.equal(new RegistryError('MANIFEST_UNKNOWN').status, 404);
  t.equal(new RegistryError('SIZE_INVALID', 'too big', { status: 413 }).status, 413);
  t.equal(new RegistryError('DENIED').message, ERROR_CATALOGUE.DENIED.description);
});

t.test("lower layers' errors map to the catalogue once, keeping their message, detail and cause", async (t) => {
  const d = `sha256:${'a'.repeat(64)}`;
  const e = `sha256:${'b'.repeat(64)}`;
  const enoent = Object.assign(new Error('no such file'), { code: 'ENOENT' });
  const enospc = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  const cases: [Error, object][] = [
    [new BlobNotFoundError(d, { cause: enoent }), { code: 'BLOB_UNKNOWN', status: 404, message: `blob ${d} is not stored`, detail: { digest: d } }],
    [new DigestMismatchError('wrong content', d, e), { code: 'DIGEST_INVALID', status: 400, message: 'wrong content', detail: { expected: d, actual: e } }],
    [new SizeMismatchError('too long', 10), { code: 'SIZE_INVALID', status: 400, detail: { expected: 10 } }],
    [new SizeMismatchError('short', 10, 4), { code: 'SIZE_INVALID', status: 400, detail: { expected: 10, received: 4 } }],
    [new StorageFullError('ENOSPC', 'the layer', enospc), { code: 'STORAGE_FULL', status: 507, message: /storage is full \(ENOSPC\): the layer/, detail: { reason: 'ENOSPC' } }],
    [new InvalidDigestError('not a digest', 'x'), { code: 'DIGEST_INVALID', status: 400, detail: { digest: 'x' } }],
  ];
  for (const [err, expected] of cases) {
    const mapped = asRegistryError(err);
    t.ok(mapped instanceof RegistryError, err.name);
    t.match(mapped, expected, err.name);
    t.equal(mapped?.cause, err, `${err.name} is the cause`);
  }
  t.equal(asRegistryError(enoent), undefined, 'a raw errno is not a catalogue error');
  t.equal(asRegistryError(enospc), undefined, 'a raw full disk is left to asRegistryErrorOrFull');
  t.match(asRegistryErrorOrFull(enospc, 'the chunk'), { code: 'STORAGE_FULL', detail: { reason: 'ENOSPC' }, message: /the chunk could not be stored/ });
  const registry = new RegistryError('DENIED');
  t.equal(asRegistryError(registry), registry, 'a RegistryError is its own answer');
});
