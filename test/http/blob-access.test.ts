// Blob access bound to the repository (src/ledger/blob-ledger.ts), local names: a blob or manifest
// is served only under the repositories it was pushed or mounted to, and a request that fails or is
// refused leaves no repository behind. Upstream-routed names: test/integration/proxy-blob-access.test.ts.
import t from 'tap';
import bcrypt from 'bcryptjs';
import { startWharf } from '../helpers/server.js';
import { assertError, assertHeadError, digestOf, imageManifest, inject, OCI_MANIFEST, pushBlob, pushManifest } from '../helpers/http.js';

const catalog = async (app: Parameters<typeof inject>[0]): Promise<string[]> =>
  ((await inject(app, 'GET', '/v2/_catalog')).json() as { repositories: string[] }).repositories;

t.test('a local blob is not served under a repository it was not pushed or mounted to', async (t) => {
  const { app } = await startWharf(t);
  const bytes = Buffer.from('private layer of team/secret');
  const digest = await pushBlob(app, 'team/secret', bytes);
  await pushBlob(app, 'team/other', 'team/other exists and holds something else');
  for (const repo of ['team/other', 'team/nosuch', 'team']) {
    assertError(t, await inject(app, 'GET', `/v2/${repo}/blobs/${digest}`), 404, 'BLOB_UNKNOWN', `GET under ${repo}`);
    assertHeadError(t, await inject(app, 'HEAD', `/v2/${repo}/blobs/${digest}`), 404, `HEAD under ${repo}`);
    assertError(t, await inject(app, 'GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=0-3' } }), 404, 'BLOB_UNKNOWN', `Range under ${repo}`);
  }
  // Mounted (the caller names the source): now served there too, and only there.
  t.equal((await inject(app, 'POST', `/v2/team/mounted/blobs/uploads/?mount=${digest}&from=team/secret`)).status, 201);
  const mounted = await inject(app, 'GET', `/v2/team/mounted/blobs/${digest}`, { headers: { range: 'bytes=0-6' } });
  t.equal(mounted.status, 206, 'served where it was mounted');
  t.same(mounted.body, bytes.subarray(0, 7));
  assertError(t, await inject(app, 'GET', `/v2/team/other/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'still not under team/other');
});

t.test('a manifest is served by digest only in the repository it was pushed to, as a manifest or as a blob', async (t) => {
  const { app } = await startWharf(t);
  const m = await imageManifest(app, 'team/secret', 'manifest access');
  const digest = await pushManifest(app, 'team/secret', 'v1', m.body, OCI_MANIFEST);
  await pushBlob(app, 'team/other', 'something');
  t.equal((await inject(app, 'GET', `/v2/team/secret/manifests/${digest}`)).status, 200, 'where it was pushed');
  assertError(t, await inject(app, 'GET', `/v2/team/other/manifests/${digest}`), 404, 'MANIFEST_UNKNOWN', 'by digest in another repository');
  assertHeadError(t, await inject(app, 'HEAD', `/v2/team/other/manifests/${digest}`), 404, 'HEAD by digest in another repository');
  assertError(t, await inject(app, 'GET', `/v2/team/other/blobs/${digest}`), 404, 'BLOB_UNKNOWN', 'its bytes as a blob in another repository');
  assertError(t, await inject(app, 'GET', `/v2/team/other/blobs/${m.config.digest}`), 404, 'BLOB_UNKNOWN', 'its config in another repository');
});

t.test('a blob GET on an unknown name leaves no repository in the catalogue, nor does any failed or refused request', async (t) => {
  const { app } = await startWharf(t);
  const pushed = await pushBlob(app, 'team/real', 'the one real blob');
  const unknown = digestOf('never pushed');
  const requests: Array<[string, string, Record<string, unknown>?]> = [
    ['GET', `/v2/nosuch/repo/blobs/${unknown}`],
    ['HEAD', `/v2/nosuch/head/blobs/${unknown}`],
    ['GET', `/v2/nosuch/other/blobs/${pushed}`],
    ['GET', '/v2/nosuch/manifest/manifests/v1'],
    ['GET', `/v2/nosuch/bydigest/manifests/${unknown}`],
    ['GET', '/v2/nosuch/tags/tags/list'],
    ['GET', `/v2/nosuch/referrers/referrers/${unknown}`],
    ['DELETE', `/v2/nosuch/delete/blobs/${pushed}`],
    ['DELETE', `/v2/nosuch/deletem/manifests/${unknown}`],
    // A monolithic push whose bytes do not match the digest.
    ['POST', `/v2/nosuch/mismatch/blobs/uploads/?digest=${unknown}`, { body: 'other bytes', headers: { 'content-type': 'application/octet-stream' } }],
    // A manifest whose blobs are not in the repository.
    ['PUT', '/v2/nosuch/refused/manifests/v1', {
      headers: { 'content-type': OCI_MANIFEST },
      body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: pushed, size: 17 }, layers: [] }),
    }],
    // A mount from a repository that does not hold the blob opens a session, and nothing else.
    ['POST', `/v2/nosuch/mount/blobs/uploads/?mount=${pushed}&from=nosuch/source`],
    ['POST', `/v2/nosuch/session/blobs/uploads/`],
  ];
  for (const [method, url, opts] of requests) {
    const res = await inject(app, method, url, opts);
    // Referrers of an unknown digest are an empty index (200), as the spec asks.
    t.ok(res.status >= 400 || res.status === 202 || url.includes('/referrers/'), `${method} ${url}: ${res.status}`);
  }
  t.strictSame(await catalog(app), ['team/real'], 'only the repository something was committed to');
});

t.test('a push refused by a policy leaves no repository in the catalogue', async (t) => {
  const basic = (user: string) => `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}`;
  const { app } = await startWharf(t, {
    local: { namespaces: ['team'] },
    auth: {
      users: [
        { name: 'alice', password: bcrypt.hashSync('alice-pw', 4) },
        { name: 'bob', password: bcrypt.hashSync('bob-pw', 4) },
      ],
      defaultPolicies: false,
      policies: [
        { repositories: ['**'], subjects: ['alice'], actions: ['*'] },
        { repositories: ['team/**'], subjects: ['bob'], actions: ['pull'] },
      ],
    },
  });
  const bob = { authorization: basic('bob') };
  const digest = digestOf('bob may not push this');
  const refused = [
    await inject(app, 'POST', `/v2/team/bob/blobs/uploads/?digest=${digest}`, { headers: { ...bob, 'content-type': 'application/octet-stream' }, body: 'bob may not push this' }),
    await inject(app, 'POST', '/v2/team/bob/blobs/uploads/', { headers: bob }),
    await inject(app, 'PUT', '/v2/team/bob/manifests/v1', { headers: { ...bob, 'content-type': OCI_MANIFEST }, body: '{}' }),
  ];
  for (const res of refused) assertError(t, res, 403, 'DENIED');
  const list = await inject(app, 'GET', '/v2/_catalog', { headers: { authorization: basic('alice') } });
  t.strictSame((list.json() as { repositories: string[] }).repositories, [], 'nothing in the catalogue');
});
