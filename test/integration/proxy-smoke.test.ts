import t from 'tap';
import { createHash } from 'node:crypto';
import { startDockerRegistry, pushTestImage } from '../helpers/docker-registry.js';
import { startWharf } from '../helpers/server.js';

t.test('a manifest and its blobs pull through from the reference registry, byte for byte', async (t) => {
  const upstream = await startDockerRegistry(t);
  const image = await pushTestImage(upstream, 'library/smoke', 'v1', { seed: 1 });
  const wharf = await startWharf(t, {
    upstreams: [{ name: 'hub', url: upstream.url, registry: 'docker.io', default: true }],
    local: { namespaces: ['local'] },
  });
  const res = await fetch(`${wharf.url}/v2/smoke/manifests/v1`);
  t.equal(res.status, 200, await res.clone().text());
  t.equal(res.headers.get('docker-content-digest'), image.manifestDigest);
  const body = Buffer.from(await res.arrayBuffer());
  t.ok(body.equals(image.manifest), 'exact upstream bytes');
  for (const blob of image.blobs) {
    const b = await fetch(`${wharf.url}/v2/docker.io/library/smoke/blobs/${blob.digest}`);
    t.equal(b.status, 200);
    const bytes = Buffer.from(await b.arrayBuffer());
    t.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, blob.digest);
  }
  const again = await fetch(`${wharf.url}/v2/library/smoke/manifests/${image.manifestDigest}?ns=docker.io`);
  t.equal(again.status, 200);
  const push = await fetch(`${wharf.url}/v2/smoke/blobs/uploads/`, { method: 'POST' });
  t.equal(push.status, 403);
  t.match(await push.text(), /read-only mirror of upstream hub/);
});
