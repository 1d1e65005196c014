// Wharf as a docker.io mirror for the real clients, each configured the way production installs do it:
// skopeo and podman (registries.conf [[registry.mirror]], docker.io blocked), containerd (hosts.toml
// for docker.io, `ctr images pull --hosts-dir`) and dockerd (daemon.json "registry-mirrors"). Wharf's
// upstream is a docker-registry started by the test holding library/testimg:latest; each client pulls
// docker.io/library/testimg:latest THROUGH Wharf and the digests are checked. Each test then proves
// Wharf served it: the upstream saw requests only from Wharf (user agent "wharf"), and after the
// upstream is stopped a fresh client store pulls the same digest again from Wharf's cache.
//
// Needs (Debian): apt-get install -y --no-install-recommends skopeo podman containerd docker.io docker-registry
// A missing client FAILS its test with the package to install. Runs as root (podman/containerd/dockerd
// are rootful here). The machine is shared: another containerd or dockerd may run on it, create and
// remove /run/containerd or /run/docker at any moment. So every client keeps its store, state and sockets
// in this file's temp dirs, podman and the daemons run in a sandbox whose /run and /var/lib are temp dirs
// too (test/helpers/container-clients.ts), each test checks that the pulled image is in that client's own
// store, and nothing outside the temp dirs is checked or removed.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, createServer as netServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import t, { type Test } from 'tap';
import { startWharf, tempDir, type TestServer } from '../helpers/server.js';
import { pushTestImage, startDockerRegistry, type DockerRegistry, type PushedImage } from '../helpers/docker-registry.js';
import { layoutRef, readLayoutBlobs } from '../helpers/oci-layout.js';
import { makeSkopeo } from '../helpers/skopeo.js';
import {
  makePodman,
  mirrorRegistriesConf,
  requireBinary,
  type Sandbox,
  startContainerd,
  startDockerd,
  upstreamHits,
} from '../helpers/container-clients.js';

t.setTimeout(600_000);

const IMAGE = 'docker.io/library/testimg:latest';

const timings: string[] = [];
function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const start = Date.now();
  return fn().finally(() => timings.push(`${label}: ${Date.now() - start} ms`));
}

interface Seen {
  method: string;
  url: string;
  ua: string;
}

interface Mirror {
  upstream: DockerRegistry;
  image: PushedImage;
  wharf: TestServer;
  /** 127.0.0.1:PORT of Wharf */
  host: string;
  /** Every request Wharf received (method, url with query, user agent). */
  seen: Seen[];
  /** Byte offset of the upstream's log after the push: later lines are Wharf's fetches. */
  logMark: number;
}

/** An upstream docker-registry holding library/testimg:latest and a Wharf mirroring it as docker.io. */
async function startMirror(t: Test, seed: string): Promise<Mirror> {
  const upstream = await startDockerRegistry(t);
  const image = await pushTestImage(upstream, 'library/testimg', 'latest', { seed });
  await upstream.accessLog(); // waits until the push's log lines are written
  const logMark = statSync(upstream.logFile).size;
  const wharf = await startWharf(t, {
    upstreams: [{ name: 'hub', url: upstream.url, registry: 'docker.io', default: true }],
    local: { namespaces: ['local'] },
  });
  const seen: Seen[] = [];
  wharf.app.server.prependListener('request', (req: IncomingMessage) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', ua: String(req.headers['user-agent'] ?? '') });
  });
  return { upstream, image, wharf, host: new URL(wharf.url).host, seen, logMark };
}

/** The client's requests reached Wharf (a manifest and every blob), and the upstream only saw Wharf. */
async function assertServedByWharf(t: Test, m: Mirror, ua: RegExp, manifestUrl: RegExp = /\/v2\/library\/testimg\/manifests\//): Promise<void> {
  const mine = m.seen.filter((s) => ua.test(s.ua));
  t.ok(mine.some((s) => manifestUrl.test(s.url)), `Wharf got the manifest request from ${String(ua)}`, {
    seen: m.seen.map((s) => `${s.method} ${s.url} (${s.ua})`),
  });
  const blobGets = new Set(mine.filter((s) => s.method === 'GET' && s.url.includes('/blobs/')).map((s) => /sha256:[0-9a-f]{64}/.exec(s.url)?.[0]));
  for (const b of m.image.blobs) t.ok(blobGets.has(b.digest), `Wharf served blob ${b.digest.slice(0, 19)}`);
  await m.upstream.accessLog(); // let the registry finish writing its log
  const hits = upstreamHits(m.upstream.logFile, m.logMark).filter((h) => h.uri.startsWith('/v2/'));
  t.ok(hits.some((h) => h.uri.includes('/manifests/')), 'the upstream saw manifest fetches');
  t.same(hits.filter((h) => h.userAgent !== 'wharf'), [], 'every upstream request after the push came from Wharf');
}

/** What a client wrote to /run and /var/lib went to its sandbox (reported, for whoever reads the log). */
function reportSandbox(t: Test, label: string, sandbox: Sandbox): void {
  const writes = sandbox.writes();
  t.comment(`${label}: wrote ${writes.length === 0 ? 'nothing' : writes.join(', ')} to its sandboxed /run and /var/lib`);
}

function assertLayout(t: Test, dir: string, image: PushedImage): void {
  t.equal(layoutRef(dir, 'latest')?.digest, image.manifestDigest, `${dir}: latest is the pushed manifest digest`);
  const blobs = readLayoutBlobs(dir);
  t.same([...blobs.keys()].sort(), [image.manifestDigest, ...image.blobs.map((b) => b.digest)].sort(), 'exactly the pushed blobs');
  for (const [digest, bytes] of blobs) {
    t.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, digest, `${digest.slice(0, 19)} content`);
  }
  t.ok(blobs.get(image.manifestDigest)?.equals(image.manifest), 'manifest byte-identical');
}

t.test('skopeo copy through a registries.conf mirror', async (t) => {
  requireBinary('skopeo');
  const m = await startMirror(t, 'mirror-clients/skopeo');
  const root = tempDir('wharf-mc-skopeo-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const client = (dir: string) => {
    const skopeo = makeSkopeo(dir);
    // makeSkopeo passes --registries-conf DIR/registries.conf (skopeo 1.9 ignores the env var): make it the mirror config.
    writeFileSync(join(dir, 'registries.conf'), mirrorRegistriesConf(m.host));
    return skopeo;
  };

  const out = join(root, 'out1');
  await timed('skopeo copy (cold)', () => client(join(root, 's1'))(['copy', '--quiet', `docker://${IMAGE}`, `oci:${out}:latest`]));
  assertLayout(t, out, m.image);
  await assertServedByWharf(t, m, /^skopeo\//);

  await m.upstream.stop();
  const out2 = join(root, 'out2');
  await timed('skopeo copy (upstream down)', () => client(join(root, 's2'))(['copy', '--quiet', `docker://${IMAGE}`, `oci:${out2}:latest`]));
  assertLayout(t, out2, m.image);
});

t.test('podman pull through a registries.conf mirror', async (t) => {
  requireBinary('podman');
  const m = await startMirror(t, 'mirror-clients/podman');
  const root = tempDir('wharf-mc-podman-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));

  const pullAndInspect = async (dir: string, label: string): Promise<void> => {
    const { podman, policy, storage, sandbox } = makePodman(dir, m.host);
    await timed(label, () => podman(['pull', '--quiet', '--signature-policy', policy, IMAGE]));
    const images = readFileSync(join(storage, 'vfs-images', 'images.json'), 'utf8');
    t.ok(images.includes(m.image.manifestDigest), `${label}: the image is in podman's own store (${storage})`);
    reportSandbox(t, label, sandbox);
    const [info] = JSON.parse((await podman(['image', 'inspect', IMAGE])).stdout) as Array<{ Digest: string; RepoDigests: string[] }>;
    t.equal(info?.Digest, m.image.manifestDigest, `${label}: image Digest is the pushed manifest digest`);
    t.ok(info?.RepoDigests.includes(`docker.io/library/testimg@${m.image.manifestDigest}`), `${label}: RepoDigests`, {
      found: info?.RepoDigests,
    });
  };

  await pullAndInspect(join(root, 'p1'), 'podman pull (cold)');
  await assertServedByWharf(t, m, /^containers\//);

  await m.upstream.stop();
  await pullAndInspect(join(root, 'p2'), 'podman pull (upstream down, fresh store)');
});

t.test('containerd: ctr images pull with a hosts.toml mirror', async (t) => {
  requireBinary('containerd');
  requireBinary('ctr');
  const m = await startMirror(t, 'mirror-clients/containerd');
  const root = tempDir('wharf-mc-ctd-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));

  const pullAndList = async (dir: string, label: string): Promise<void> => {
    const ctd = await timed(`containerd start (${label})`, () => startContainerd(t, dir, m.wharf.url));
    await timed(`ctr images pull (${label})`, () =>
      ctd.ctr(['images', 'pull', '--snapshotter', 'native', '--hosts-dir', ctd.hostsDir, IMAGE]),
    );
    const ls = (await ctd.ctr(['images', 'ls'])).stdout;
    const row = ls.split('\n').map((l) => l.trim().split(/\s+/)).find((cols) => cols[0] === IMAGE);
    t.equal(row?.[2], m.image.manifestDigest, `${label}: ctr images ls shows the pushed digest`, { ls });
    const manifest = join(ctd.root, 'io.containerd.content.v1.content', 'blobs', 'sha256', m.image.manifestDigest.slice('sha256:'.length));
    t.ok(existsSync(manifest), `${label}: the manifest is in containerd's own content store (${ctd.root})`);
    t.ok(existsSync(ctd.address), `${label}: containerd's socket is its own (${ctd.address})`);
    await ctd.stop();
    reportSandbox(t, `containerd (${label})`, ctd.sandbox);
  };

  await pullAndList(join(root, 'c1'), 'cold');
  // containerd names the mirrored registry in ?ns= (hosts.toml mirrors).
  await assertServedByWharf(t, m, /^containerd\//, /\/v2\/library\/testimg\/manifests\/latest\?ns=docker\.io$/);

  await m.upstream.stop();
  await pullAndList(join(root, 'c2'), 'upstream down, fresh root');
});

t.test('dockerd with registry-mirrors: docker pull testimg', async (t) => {
  requireBinary('dockerd');
  requireBinary('docker');
  const m = await startMirror(t, 'mirror-clients/dockerd');
  // Short: dockerd's and its containerd's unix sockets live under it.
  const root = tempDir('wharf-mc-dk-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dk = await timed('dockerd start', () => startDockerd(t, join(root, 'd'), m.wharf.url));

  const pullAndInspect = async (label: string): Promise<void> => {
    await timed(label, () => dk.docker(['pull', '--quiet', 'testimg:latest']));
    const digests = JSON.parse((await dk.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', 'testimg:latest'])).stdout) as string[];
    t.ok(digests.includes(`testimg@${m.image.manifestDigest}`), `${label}: RepoDigests has the pushed digest`, { digests });
    const repositories = readFileSync(join(dk.dataRoot, 'image', 'vfs', 'repositories.json'), 'utf8');
    t.ok(repositories.includes(m.image.manifestDigest), `${label}: the image is in dockerd's own data root (${dk.dataRoot})`);
  };

  await pullAndInspect('docker pull (cold)');
  await assertServedByWharf(t, m, /^docker\//);

  // Only Wharf can serve it now (a failing mirror would make dockerd try the real docker.io, where
  // library/testimg does not exist).
  await m.upstream.stop();
  await dk.docker(['image', 'rm', 'testimg:latest']);
  await pullAndInspect('docker pull (upstream down, after rmi)');
  await dk.stop();
  reportSandbox(t, 'dockerd', dk.sandbox);
});

t.test("a sandboxed containerd sees its own /run and /var/lib, never the host's", async (t) => {
  // What lets these tests share a machine with another containerd or dockerd: whatever the host has or
  // gets under /run (/run/containerd, /run/docker) is not visible to the test's daemon, and what the
  // daemon writes there lands in the test's own directory.
  requireBinary('containerd');
  const root = tempDir('wharf-mc-sbx-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const ctd = await startContainerd(t, join(root, 'c'), 'http://127.0.0.1:9');
  const inside = (path: string): string => `/proc/${ctd.pid}/root${path}`;
  for (const [hostPath, own] of Object.entries(ctd.sandbox.dirs)) {
    writeFileSync(join(own, 'wharf-test-marker'), 'mine');
    t.strictSame(readdirSync(inside(hostPath)).sort(), readdirSync(own).sort(), `its ${hostPath} is ${own}`);
    t.equal(readFileSync(inside(`${hostPath}/wharf-test-marker`), 'utf8'), 'mine', `a file put in ${own} is in its ${hostPath}`);
  }
  const hostRun = readdirSync('/run').filter((e) => !existsSync(join(ctd.sandbox.dirs['/run'], e)));
  t.strictSame(hostRun.filter((e) => existsSync(inside(`/run/${e}`))), [], "none of the host's /run entries is visible to it");
  t.ok(existsSync(ctd.address) && ctd.address.startsWith(root), 'its socket is in its own directory');
  await ctd.stop();
});

t.test('a TLS ClientHello on the plain-HTTP port gets a 400 and the socket closes within 1 s', async (t) => {
  const wharf = await startWharf(t);
  const { port } = new URL(wharf.url);

  // A real ClientHello, as node's TLS client sends it (captured by a throwaway TCP server).
  const hello = await new Promise<Buffer>((resolve, reject) => {
    const srv = netServer((sock) => {
      sock.once('data', (d) => {
        resolve(d);
        sock.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const tls = tlsConnect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, servername: 'docker.io', rejectUnauthorized: false });
      tls.on('error', () => {});
    });
    srv.on('error', reject);
  });
  t.equal(hello[0], 0x16, 'a TLS handshake record');
  t.equal(hello[5], 0x01, 'ClientHello');

  const started = Date.now();
  const { data, closedMs } = await new Promise<{ data: Buffer; closedMs: number }>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = netConnect(Number(port), '127.0.0.1', () => sock.write(hello));
    const guard = setTimeout(() => {
      sock.destroy();
      reject(new Error(`socket still open after 3 s; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    }, 3_000);
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => {}); // a reset after the answer still counts as closed
    sock.on('close', () => {
      clearTimeout(guard);
      resolve({ data: Buffer.concat(chunks), closedMs: Date.now() - started });
    });
  });
  t.match(data.toString('latin1'), /^HTTP\/1\.[01] 400 /, 'an HTTP 400 answer');
  t.ok(closedMs < 1_000, `closed after ${closedMs} ms`);

  // And a real TLS client fails fast instead of hanging.
  const tlsStarted = Date.now();
  const err = await new Promise<Error | undefined>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: Number(port), servername: 'docker.io', rejectUnauthorized: false });
    const guard = setTimeout(() => {
      s.destroy();
      resolve(new Error('hung'));
    }, 3_000);
    s.once('secureConnect', () => {
      clearTimeout(guard);
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (e) => {
      clearTimeout(guard);
      resolve(e);
    });
    s.once('close', () => {
      clearTimeout(guard);
      resolve(new Error('closed'));
    });
  });
  t.ok(err && err.message !== 'hung', `TLS client gets an error (${err?.message ?? 'none'})`);
  t.ok(Date.now() - tlsStarted < 1_000, 'within 1 s');
});

t.teardown(() => t.comment(`timings:\n${timings.join('\n')}`));
