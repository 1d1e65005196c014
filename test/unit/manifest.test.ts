// parseManifest: linear in its descriptors, references each digest once in first-seen order, and
// the descriptor limit.
import t from 'tap';
import { createHash } from 'node:crypto';
import { DescriptorLimitError, parseManifest } from '../../src/registry/manifest.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('config'), size: 2 };
const image = (layers: unknown[]) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }));

t.test('a 4 MiB manifest of ~37,000 distinct layers parses in linear time', async (t) => {
  const small = image(Array.from({ length: 1000 }, (_, i) => ({ mediaType: 'a/b', digest: sha(`layer ${i}`), size: 1 })));
  const big = image(Array.from({ length: 37_000 }, (_, i) => ({ mediaType: 'a/b', digest: sha(`layer ${i}`), size: 1 })));
  t.ok(big.length <= 4 * 1024 * 1024, `${big.length} bytes`);
  const t0 = performance.now();
  const parsed = parseManifest(big, OCI_MANIFEST, { maxDescriptors: 40_000 });
  const ms = performance.now() - t0;
  t.equal(parsed.references.length, 37_001, 'config and every layer');
  // The quadratic version took 4 to 20 s on this input (37,000² digest comparisons); linear parsing
  // takes tens of milliseconds. The bound leaves room for a loaded machine.
  t.ok(ms < 2000, `parsed in ${Math.round(ms)} ms`);
  t.equal(parseManifest(small, OCI_MANIFEST).references.length, 1001);
});

t.test('each digest is referenced once, in first-seen order, config first', async (t) => {
  const a = { mediaType: 'a/b', digest: sha('a'), size: 1 };
  const b = { mediaType: 'a/b', digest: sha('b'), size: 1 };
  const foreign = { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar', digest: sha('f'), size: 1 };
  const parsed = parseManifest(image([b, a, b, { ...config, mediaType: 'a/b' }, foreign, a]), OCI_MANIFEST);
  t.same(parsed.references, [
    { digest: config.digest, kind: 'blob' },
    { digest: b.digest, kind: 'blob' },
    { digest: a.digest, kind: 'blob' },
  ]);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [b, a, b] }));
  t.same(parseManifest(index, OCI_INDEX).references, [
    { digest: b.digest, kind: 'manifest' },
    { digest: a.digest, kind: 'manifest' },
  ]);
});

t.test('descriptors beyond maxDescriptors are refused before any is checked', async (t) => {
  // Four descriptors (config, two layers, subject) over a limit of 3; the layers are not even valid.
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [1, 2], subject: config }));
  t.ok(
    (() => {
      try {
        parseManifest(body, OCI_MANIFEST, { maxDescriptors: 3 });
      } catch (err) {
        return err instanceof DescriptorLimitError;
      }
      return false;
    })(),
    'a DescriptorLimitError',
  );
  t.throws(() => parseManifest(body, OCI_MANIFEST, { maxDescriptors: 3 }), { code: 'MANIFEST_INVALID', status: 400, detail: { descriptors: 4, limit: 3 } });
  t.throws(() => parseManifest(body, OCI_MANIFEST, { maxDescriptors: 4 }), { code: 'MANIFEST_INVALID', message: /layers\[0\] must be a descriptor object/ }, 'at the limit, validation runs');
});
