// Access control end to end with real clients against a Wharf on a real socket (plain HTTP on
// 127.0.0.1, so every client runs with TLS verification off):
//   - skopeo: login into a temporary auth file, push and inspect with it; a wrong password; a
//     pull-only user; a service token used as the Basic password, inside and outside its scopes;
//   - podman (rootful, isolated store as in mirror-clients.test.ts): login, push, pull, a bad login;
//   - anonymous pull through the mirror with the built-in rules, refused without them;
//   - a namespace per user (`users/{user}/**`), and the token flow on a mirror name spelled with its registry.
// Each client leaves a trace in Wharf's request log (recorded per server), so the tests also check
// that the auth path was really taken: a token fetched, a 401 or 403 answered.
//
// Needs (Debian): apt-get install -y --no-install-recommends skopeo podman docker-registry
// A missing client FAILS its test with the package to install (never a skip). The podman test alone
// is skipped when not running as root: its isolated store is rootful (see podmanSkip).
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import t, { type Test } from 'tap';
import { startWharf, tempDir, type TestServer } from '../helpers/server.js';
import { layoutRef, readLayoutBlobs, writeTestLayout, type TestLayout } from '../helpers/oci-layout.js';
import { makeSkopeo, type Skopeo } from '../helpers/skopeo.js';
import { makePodman, requireBinary } from '../helpers/container-clients.js';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';

t.setTimeout(600_000);

/** Every client invocation is killed (SIGKILL) after this long. */
const CLIENT_TIMEOUT_MS = 90_000;
const HTTP_TIMEOUT_MS = 15_000;

const ALICE_PW = 'alice-e2e-pw';
const READER_PW = 'reader-e2e-pw';
const PULLER_PW = 'puller-e2e-pw';
// Cost 4: bcrypt verification on every Basic request stays cheap.
const hash = (pw: string): string => bcrypt.hashSync(pw, 4);
const basic = (user: string, pw: string): string => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/**
 * Local names only, no built-in rules: alice (admin) may do anything to local/**, reader may only
 * pull it, anonymous may do nothing.
 */
function localAuthConfig(): Record<string, unknown> {
  return {
    local: { namespaces: ['local'] },
    auth: {
      users: [
        { name: 'alice', password: hash(ALICE_PW), groups: ['admin'] },
        { name: 'reader', password: hash(READER_PW), groups: [] },
      ],
      defaultPolicies: false,
      policies: [
        { repositories: ['local/**'], subjects: ['alice'], actions: ['*'] },
        { repositories: ['local/**'], subjects: ['reader'], actions: ['pull'] },
      ],
    },
  };
}

interface Seen {
  method: string;
  url: string;
  status: number;
  /** The scheme of the Authorization header ("Basic", "Bearer"), or "" without one. */
  auth: string;
}

/** Every request `s` answers, with its status, in order of completion. */
function recordRequests(s: TestServer): Seen[] {
  const seen: Seen[] = [];
  s.app.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    res.once('finish', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        status: res.statusCode,
        auth: /^(\S+)/.exec(String(req.headers.authorization ?? ''))?.[1] ?? '',
      });
    });
  });
  return seen;
}

const show = (seen: Seen[]): string[] => seen.map((s) => `${s.method} ${s.url} ${s.auth || '-'} -> ${s.status}`);

interface Failure {
  /** The client's exit code, as the helpers report it in their error message. */
  code: number | undefined;
  /** The client's stderr (not the command line, which holds names that could match an error pattern). */
  stderr: string;
}

/**
 * The client run `run` must fail: resolves to its exit code and output (the helpers throw an error
 * holding both, `failed (code N...`). A run that succeeds fails the test.
 */
async function expectFailure(t: Test, what: string, run: Promise<unknown>): Promise<Failure> {
  try {
    await run;
  } catch (err) {
    const message = (err as Error).message;
    const m = /failed \(code (\d+)/.exec(message);
    const code = m ? Number(m[1]) : undefined;
    t.ok(code !== undefined && code !== 0, `${what}: exits non-zero (code ${String(code)})`, { message });
    const stderr = /\nstderr:\n([\s\S]*?)\nstdout:\n/.exec(message)?.[1] ?? '';
    if (process.env.WHARF_E2E_SHOW_ERRORS) t.comment(`${what}: ${stderr.trim()}`);
    return { code, stderr };
  }
  t.fail(`${what}: succeeded, expected a failure`);
  return { code: 0, stderr: '' };
}

/** The manifest Wharf holds for `repo:ref`, read over HTTP with Basic credentials. */
async function manifestOf(url: string, repo: string, ref: string, auth: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    headers: { authorization: auth, accept: MANIFEST_ACCEPT },
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

function authFileEntries(file: string): string[] {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { auths?: Record<string, unknown> };
  return Object.keys(doc.auths ?? {});
}

/** The copied OCI layout names `digest` under `ref` and holds exactly the source's blobs, byte for byte. */
function assertLayoutCopy(t: Test, src: Map<string, Buffer>, dir: string, ref: string, digest: string, expected: string[]): void {
  t.equal(layoutRef(dir, ref)?.digest, digest, `${ref}: the pulled manifest has the pushed digest`);
  const out = readLayoutBlobs(dir);
  t.same([...out.keys()].sort(), [...new Set(expected)].sort(), 'exactly the pushed blobs');
  for (const [d, bytes] of out) {
    t.equal(sha256(bytes), d, `${d.slice(0, 19)}: content matches its digest`);
    const orig = src.get(d);
    if (orig) t.ok(orig.equals(bytes), `${d.slice(0, 19)}: byte-identical to the source`);
  }
}

t.test('skopeo: login, push with the auth file, wrong password, pull-only user, service token', async (t) => {
  requireBinary('skopeo');
  const root = tempDir('wharf-auth-skopeo-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const skopeo: Skopeo = makeSkopeo(join(root, 'client'));
  const run = (args: string[]) => skopeo(args, { timeoutMs: CLIENT_TIMEOUT_MS });

  const s = await startWharf(t, localAuthConfig());
  const seen = recordRequests(s);
  const host = new URL(s.url).host;
  const layout: TestLayout = writeTestLayout(join(root, 'layout'), 'wharf-e2e-auth-skopeo');
  const srcBlobs = readLayoutBlobs(layout.dir);
  const { image } = layout;
  const src = `oci:${layout.dir}:${layout.imageTag}`;
  const alice = basic('alice', ALICE_PW);

  await t.test('skopeo login with the right password, then copy and inspect with that auth file', async (t) => {
    const authfile = join(root, 'login-auth.json');
    const login = await run(['login', '--tls-verify=false', '--authfile', authfile, '-u', 'alice', '-p', ALICE_PW, host]);
    t.match(login.stdout.toString('utf8'), /Login Succeeded/, 'skopeo login succeeded', { stderr: login.stderr });
    t.same(authFileEntries(authfile), [host], 'the auth file holds credentials for Wharf');

    const mark = seen.length;
    const digestFile = join(root, 'app-v1.digest');
    const pushed = await run([
      'copy', '--quiet', '--dest-tls-verify=false', '--authfile', authfile, '--digestfile', digestFile,
      src, `docker://${host}/local/app:v1`,
    ]);
    t.equal(readFileSync(digestFile, 'utf8').trim(), image.descriptor.digest, 'pushed digest', { stderr: pushed.stderr });
    const mine = seen.slice(mark);
    t.ok(
      mine.some((r) => r.method === 'GET' && r.url.startsWith('/auth/token?') && r.auth === 'Basic' && r.status === 200),
      'skopeo fetched a token with the logged-in credentials', { seen: show(mine) },
    );
    t.ok(
      mine.some((r) => r.method === 'PUT' && r.url === '/v2/local/app/manifests/v1' && r.auth === 'Bearer' && r.status === 201),
      'the manifest PUT carried the Bearer token and was accepted', { seen: show(mine) },
    );
    const stored = await manifestOf(s.url, 'local/app', 'v1', alice);
    t.equal(stored.status, 200);
    t.ok(stored.body.equals(image.manifestBytes), 'Wharf holds the exact manifest bytes');

    const raw = await run(['inspect', '--raw', '--tls-verify=false', '--authfile', authfile, `docker://${host}/local/app:v1`]);
    t.ok(raw.stdout.equals(image.manifestBytes), 'inspect --raw returns the pushed manifest', { stderr: raw.stderr });
    const info = JSON.parse(
      (await run(['inspect', '--tls-verify=false', '--authfile', authfile, `docker://${host}/local/app:v1`])).stdout.toString('utf8'),
    ) as { Digest: string; Layers: string[] };
    t.equal(info.Digest, image.descriptor.digest, 'inspect Digest');
    t.same(info.Layers, image.layers.map((l) => l.digest), 'inspect Layers');

    // Without credentials (the client's own empty auth file) the same inspect is refused.
    const anon = await expectFailure(t, 'anonymous inspect', run(['inspect', '--tls-verify=false', `docker://${host}/local/app:v1`]));
    t.match(anon.stderr, /unauthorized: authentication required to pull local\/app/, 'anonymous inspect: unauthorized');
  });

  await t.test('skopeo copy --dest-creds with a wrong password fails with an auth error', async (t) => {
    const mark = seen.length;
    const f = await expectFailure(
      t, 'push with a wrong password',
      run(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'alice:wrong-pw', src, `docker://${host}/local/app:wrong`]),
    );
    t.match(f.stderr, /unable to retrieve auth token: invalid username\/password/, 'an auth error', { stderr: f.stderr });
    const mine = seen.slice(mark);
    t.ok(mine.some((r) => r.auth === 'Basic' && r.status === 401), 'Wharf answered the wrong password with 401', { seen: show(mine) });
    t.notOk(mine.some((r) => r.method === 'PUT' || (r.method === 'POST' && r.status === 202)), 'nothing was uploaded', { seen: show(mine) });
    t.equal((await manifestOf(s.url, 'local/app', 'wrong', alice)).status, 404, 'no local/app:wrong');
  });

  await t.test('a pull-only user: push denied, copy out works', async (t) => {
    const mark = seen.length;
    const f = await expectFailure(
      t, 'push as reader',
      run(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `reader:${READER_PW}`, src, `docker://${host}/local/app:reader`]),
    );
    t.match(f.stderr, /denied: user reader may not push repository local\/app/, 'the error says denied', { stderr: f.stderr });
    // The blobs are already in local/app (HEAD answers 200 to a puller), so the first write skopeo
    // attempts is the manifest PUT.
    const mine = seen.slice(mark);
    const writes = mine.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    t.ok(writes.some((r) => r.method === 'PUT' && r.url === '/v2/local/app/manifests/reader' && r.status === 403), 'the manifest PUT was refused with 403', {
      seen: show(mine),
    });
    t.same(writes.filter((r) => r.status < 400), [], 'no write succeeded', { seen: show(mine) });
    t.equal((await manifestOf(s.url, 'local/app', 'reader', alice)).status, 404, 'no local/app:reader');

    const out = join(root, 'reader-out');
    await run([
      'copy', '--quiet', '--src-tls-verify=false', '--src-creds', `reader:${READER_PW}`, `docker://${host}/local/app:v1`, `oci:${out}:v1`,
    ]);
    assertLayoutCopy(t, srcBlobs, out, 'v1', image.descriptor.digest, image.blobs);
  });

  await t.test('a service token as the password: pull within its scope, push outside it fails', async (t) => {
    const created = await fetch(`${s.url}/api/tokens`, {
      method: 'POST',
      headers: { authorization: alice, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'ci', scopes: [{ repositories: ['local/app'], actions: ['pull'] }] }),
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const createdText = await created.text();
    t.equal(created.status, 201, `POST /api/tokens: ${createdText}`);
    const { token } = JSON.parse(createdText) as { id: string; token: string };
    const ci = `ci:${token}`;

    const out = join(root, 'ci-out');
    await run(['copy', '--quiet', '--src-tls-verify=false', '--src-creds', ci, `docker://${host}/local/app:v1`, `oci:${out}:v1`]);
    assertLayoutCopy(t, srcBlobs, out, 'v1', image.descriptor.digest, image.blobs);
    const info = JSON.parse(
      (await run(['inspect', '--tls-verify=false', '--creds', ci, `docker://${host}/local/app:v1`])).stdout.toString('utf8'),
    ) as { Digest: string };
    t.equal(info.Digest, image.descriptor.digest, 'inspect with the token: Digest');

    // Push is not among its actions, and local/other not among its repositories. Towards
    // local/other skopeo's first request is a HEAD for a blob: its 403 has no body, so
    // containers/image can only report the status.
    const outside = [
      { dest: 'local/app:ci', error: /denied: service token ci may not push repository local\/app/ },
      { dest: 'local/other:ci', error: /failed to read from destination repository local\/other: 403 \(Forbidden\)/ },
    ];
    for (const { dest, error } of outside) {
      const mark = seen.length;
      const f = await expectFailure(
        t, `push to ${dest} with the token`,
        run(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', ci, src, `docker://${host}/${dest}`]),
      );
      t.match(f.stderr, error, `push to ${dest}: refused`, { stderr: f.stderr });
      const writes = seen.slice(mark).filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
      t.same(writes.filter((r) => r.status < 400), [], `push to ${dest}: no write succeeded`, { seen: show(seen.slice(mark)) });
      const [repo, tag] = dest.split(':') as [string, string];
      t.equal((await manifestOf(s.url, repo, tag, alice)).status, 404, `no ${dest}`);
    }
    // The token still reads nothing outside its repositories.
    const f = await expectFailure(t, 'inspect local/other with the token', run(['inspect', '--tls-verify=false', '--creds', ci, `docker://${host}/local/other:v1`]));
    t.match(f.stderr, /denied: service token ci may not pull repository local\/other/, 'outside its repositories: denied', { stderr: f.stderr });
  });
});

// makePodman is rootful: its vfs store, run root and file locks under a temp dir need euid 0 (rootless
// podman would need newuidmap and subordinate ids instead). CI runs the e2e tests as root, so this
// runs there; a missing podman binary fails the test rather than skipping it.
const podmanSkip = process.getuid?.() === 0 ? false : 'podman here is rootful (isolated vfs store under a temp dir) and needs euid 0; CI runs as root';

t.test('podman: login, push and pull a local name with the right rights', { skip: podmanSkip }, async (t) => {
  requireBinary('podman');
  // All lower case: podman names an image pulled from oci:PATH after PATH, and a reference must be
  // lower case (mkdtemp's suffix is not).
  const root = join(tmpdir(), `wharf-auth-podman-${randomBytes(6).toString('hex')}`);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const s = await startWharf(t, localAuthConfig());
  const seen = recordRequests(s);
  const host = new URL(s.url).host;
  const ref = `${host}/local/podman:v1`;
  const layout = writeTestLayout(join(root, 'layout'), 'wharf-e2e-auth-podman');
  const opts = { timeoutMs: CLIENT_TIMEOUT_MS };

  // The pushing store: the image comes from an OCI layout on disk, not from any registry.
  const p1 = makePodman(join(root, 'p1'), host);
  const authFile1 = join(p1.root, 'auth.json');
  const loaded = await p1.podman(['pull', '--quiet', '--signature-policy', p1.policy, `oci:${layout.dir}:${layout.imageTag}`], opts);
  const imageId = loaded.stdout.trim().split('\n').pop() ?? '';
  t.match(imageId, /^[0-9a-f]{64}$/, 'the test image is in the podman store');

  await t.test('podman login with a bad password fails', async (t) => {
    const mark = seen.length;
    const f = await expectFailure(t, 'podman login (bad password)', p1.podman(['login', '--tls-verify=false', '-u', 'alice', '-p', 'wrong-pw', host], opts));
    t.match(f.stderr, /logging into "[^"]+": invalid username\/password/, 'an auth error', { stderr: f.stderr });
    t.ok(seen.slice(mark).some((r) => r.auth === 'Basic' && r.status === 401), 'Wharf answered 401', { seen: show(seen.slice(mark)) });
    t.same(authFileEntries(authFile1), [], 'nothing stored in the auth file');
    // Not logged in: a push is refused.
    const push = await expectFailure(t, 'podman push without login', p1.podman(['push', '--quiet', '--tls-verify=false', imageId, ref], opts));
    t.match(push.stderr, /local\/podman: unauthorized: authentication required/, 'anonymous push: unauthorized', { stderr: push.stderr });
  });

  let pushedDigest = '';
  await t.test('podman login + push as a user with push rights', async (t) => {
    const login = await p1.podman(['login', '--tls-verify=false', '-u', 'alice', '-p', ALICE_PW, host], opts);
    t.match(login.stdout, /Login Succeeded/, 'podman login succeeded');
    t.same(authFileEntries(authFile1), [host], 'the auth file holds credentials for Wharf');
    const digestFile = join(root, 'podman.digest');
    await p1.podman(['push', '--quiet', '--tls-verify=false', '--digestfile', digestFile, imageId, ref], opts);
    pushedDigest = readFileSync(digestFile, 'utf8').trim();
    t.match(pushedDigest, /^sha256:[0-9a-f]{64}$/, 'podman wrote the pushed digest');
    const stored = await manifestOf(s.url, 'local/podman', 'v1', basic('alice', ALICE_PW));
    t.equal(stored.status, 200, 'Wharf has local/podman:v1');
    t.equal(sha256(stored.body), pushedDigest, 'the stored manifest has the digest podman pushed');
  });

  await t.test('podman pull into a fresh store: refused anonymously, works as the pull-only user, who cannot push', async (t) => {
    const p2 = makePodman(join(root, 'p2'), host);
    const anon = await expectFailure(
      t, 'anonymous podman pull',
      p2.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', p2.policy, ref], opts),
    );
    t.match(anon.stderr, /unauthorized: authentication required to pull local\/podman/, 'anonymous pull: unauthorized', { stderr: anon.stderr });

    await p2.podman(['login', '--tls-verify=false', '-u', 'reader', '-p', READER_PW, host], opts);
    await p2.podman(['pull', '--quiet', '--tls-verify=false', '--signature-policy', p2.policy, ref], opts);
    const [info] = JSON.parse((await p2.podman(['image', 'inspect', ref], opts)).stdout) as Array<{ Digest: string; RepoDigests: string[] }>;
    t.ok(pushedDigest, 'a digest was pushed');
    t.equal(info?.Digest, pushedDigest, 'the pulled image has the pushed digest');
    t.ok(info?.RepoDigests.includes(`${host}/local/podman@${pushedDigest}`), 'RepoDigests', { found: info?.RepoDigests });

    const denied = await expectFailure(
      t, 'podman push as reader',
      p2.podman(['push', '--quiet', '--tls-verify=false', ref, `${host}/local/podman:reader`], opts),
    );
    t.match(denied.stderr, /denied: user reader may not push repository local\/podman/, 'push as reader: denied', { stderr: denied.stderr });
    t.equal((await manifestOf(s.url, 'local/podman', 'reader', basic('alice', ALICE_PW))).status, 404, 'no local/podman:reader');
  });
});

t.test('anonymous pull through the mirror: allowed by the built-in rules, refused without them', async (t) => {
  requireBinary('skopeo');
  const root = tempDir('wharf-auth-mirror-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const upstream = await startDockerRegistry(t);
  const pushed = await pushTestImage(upstream, 'library/testimg', 'latest', { seed: 'auth-clients/mirror' });
  const upstreams = [{ name: 'hub', url: upstream.url, registry: 'docker.io', default: true }];
  const skopeo = makeSkopeo(join(root, 'client'));
  const run = (args: string[]) => skopeo(args, { timeoutMs: CLIENT_TIMEOUT_MS });
  const expectedBlobs = [pushed.manifestDigest, ...pushed.blobs.map((b) => b.digest)];

  const assertPulled = (t: Test, dir: string): void => {
    t.equal(layoutRef(dir, 'latest')?.digest, pushed.manifestDigest, 'the pulled manifest has the upstream digest');
    const blobs = readLayoutBlobs(dir);
    t.same([...blobs.keys()].sort(), [...expectedBlobs].sort(), 'exactly the upstream blobs');
    for (const [d, bytes] of blobs) t.equal(sha256(bytes), d, `${d.slice(0, 19)}: content matches its digest`);
    t.ok(blobs.get(pushed.manifestDigest)?.equals(pushed.manifest), 'manifest byte-identical');
  };

  await t.test('defaultPolicies true: skopeo inspect and copy without credentials', async (t) => {
    const s = await startWharf(t, { upstreams, local: { namespaces: ['local'] }, auth: { defaultPolicies: true } });
    const seen = recordRequests(s);
    const host = new URL(s.url).host;
    const image = `docker://${host}/library/testimg:latest`;

    const info = JSON.parse((await run(['inspect', '--tls-verify=false', image])).stdout.toString('utf8')) as { Digest: string };
    t.equal(info.Digest, pushed.manifestDigest, 'anonymous inspect: the upstream digest');
    const out = join(root, 'anon-out');
    await run(['copy', '--quiet', '--src-tls-verify=false', image, `oci:${out}:latest`]);
    assertPulled(t, out);

    // Auth really was on: the ping was challenged, and skopeo pulled with an anonymous token.
    t.ok(seen.some((r) => r.url === '/v2/' && r.auth === '' && r.status === 401), 'the anonymous ping got 401', { seen: show(seen) });
    t.ok(seen.some((r) => r.url.startsWith('/auth/token?') && r.auth === '' && r.status === 200), 'an anonymous token was issued', { seen: show(seen) });
    t.ok(seen.some((r) => r.url === '/v2/library/testimg/manifests/latest' && r.auth === 'Bearer' && r.status === 200), 'the manifest was served to the anonymous token', {
      seen: show(seen),
    });
    // The built-in rules give anonymous pull of upstream names only: a local push is still refused.
    const push = await expectFailure(
      t, 'anonymous push to a local name',
      run(['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', image, `docker://${host}/local/copy:v1`]),
    );
    t.match(push.stderr, /local\/copy: unauthorized: authentication required/, 'anonymous push: unauthorized', { stderr: push.stderr });
  });

  await t.test('defaultPolicies false, a policy for one user: anonymous pull refused, the user pulls', async (t) => {
    const s = await startWharf(t, {
      upstreams,
      local: { namespaces: ['local'] },
      auth: {
        users: [{ name: 'puller', password: hash(PULLER_PW), groups: [] }],
        defaultPolicies: false,
        policies: [{ repositories: ['library/*'], subjects: ['puller'], actions: ['pull'] }],
      },
    });
    const seen = recordRequests(s);
    const host = new URL(s.url).host;
    const image = `docker://${host}/library/testimg:latest`;

    const anonInspect = await expectFailure(t, 'anonymous inspect', run(['inspect', '--tls-verify=false', image]));
    t.match(anonInspect.stderr, /unauthorized: authentication required to pull library\/testimg/, 'anonymous inspect: unauthorized', { stderr: anonInspect.stderr });
    const anonCopy = await expectFailure(
      t, 'anonymous copy',
      run(['copy', '--quiet', '--src-tls-verify=false', image, `oci:${join(root, 'refused-out')}:latest`]),
    );
    t.match(anonCopy.stderr, /unauthorized: authentication required to pull library\/testimg/, 'anonymous copy: unauthorized', { stderr: anonCopy.stderr });
    t.notOk(
      seen.some((r) => r.url.startsWith('/v2/library/testimg/') && r.status === 200),
      'nothing of library/testimg was served anonymously', { seen: show(seen) },
    );

    const creds = `puller:${PULLER_PW}`;
    const info = JSON.parse((await run(['inspect', '--tls-verify=false', '--creds', creds, image])).stdout.toString('utf8')) as { Digest: string };
    t.equal(info.Digest, pushed.manifestDigest, 'inspect --creds: the upstream digest');
    const out = join(root, 'puller-out');
    await run(['copy', '--quiet', '--src-tls-verify=false', '--src-creds', creds, image, `oci:${out}:latest`]);
    assertPulled(t, out);
  });
});

t.test('skopeo: every user pushes into their own namespace ({user}); the token flow works on canonical names', async (t) => {
  requireBinary('skopeo');
  const root = tempDir('wharf-auth-users-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const upstream = await startDockerRegistry(t);
  const pushed = await pushTestImage(upstream, 'library/testimg', 'latest', { seed: 'auth-clients/users' });
  const s = await startWharf(t, {
    upstreams: [{ name: 'hub', url: upstream.url, registry: 'docker.io', default: true }],
    local: { namespaces: ['users'] },
    auth: {
      users: [
        { name: 'alice', password: hash(ALICE_PW), groups: [] },
        { name: 'reader', password: hash(READER_PW), groups: [] },
      ],
      policies: [{ repositories: ['users/{user}/**'], subjects: ['authenticated'], actions: ['*'] }],
    },
  });
  const seen = recordRequests(s);
  const host = new URL(s.url).host;
  const skopeo = makeSkopeo(join(root, 'client'));
  const run = (args: string[]) => skopeo(args, { timeoutMs: CLIENT_TIMEOUT_MS });
  const layout = writeTestLayout(join(root, 'layout'), 'wharf-e2e-auth-users');
  const src = `oci:${layout.dir}:${layout.imageTag}`;
  const aliceCreds = `alice:${ALICE_PW}`;
  const readerCreds = `reader:${READER_PW}`;

  await run(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', aliceCreds, src, `docker://${host}/users/alice/app:v1`]);
  t.equal((await manifestOf(s.url, 'users/alice/app', 'v1', basic('alice', ALICE_PW))).status, 200, 'alice pushed into users/alice');
  const intoAlice = await expectFailure(
    t, "reader's push into users/alice",
    run(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', readerCreds, src, `docker://${host}/users/alice/other:v1`]),
  );
  t.match(intoAlice.stderr, /users\/alice\/other: (403|denied)/, 'refused (403)', { stderr: intoAlice.stderr });
  const readAlice = await expectFailure(t, "reader's pull of users/alice/app", run(['inspect', '--tls-verify=false', '--creds', readerCreds, `docker://${host}/users/alice/app:v1`]));
  t.match(readAlice.stderr, /denied|403|unauthorized/, 'refused', { stderr: readAlice.stderr });
  await run(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', readerCreds, src, `docker://${host}/users/reader/app:v1`]);
  t.equal((await manifestOf(s.url, 'users/reader/app', 'v1', basic('reader', READER_PW))).status, 200, 'reader pushed into users/reader');

  // The mirror under its registry-host spelling: skopeo asks for a token scoped to the name it sends,
  // Wharf grants it under the canonical library/testimg, and that token opens the repository.
  const mark = seen.length;
  const info = JSON.parse((await run(['inspect', '--tls-verify=false', `docker://${host}/docker.io/library/testimg:latest`])).stdout.toString('utf8')) as { Digest: string };
  t.equal(info.Digest, pushed.manifestDigest, 'anonymous inspect through docker.io/library/testimg');
  const mine = seen.slice(mark);
  t.ok(mine.some((r) => r.url.startsWith('/auth/token?') && r.status === 200), 'an anonymous token was issued', { seen: show(mine) });
  t.ok(
    mine.some((r) => r.url === '/v2/docker.io/library/testimg/manifests/latest' && r.auth === 'Bearer' && r.status === 200),
    'the manifest was served to that token', { seen: show(mine) },
  );
});
