// Real clients against `wharf serve` on HTTPS (tls.cert / tls.key) with a certificate of a test CA that
// they are told to trust, with no insecure flag anywhere: skopeo pushes and pulls back a local image
// (--dest-cert-dir / --src-cert-dir holding ca.crt) and is refused without the CA; containerd pulls
// docker.io/library/testimg through Wharf as its mirror (hosts.toml with ca = ...), Wharf filling from
// a docker-registry upstream; `wharf healthcheck` asks /healthz over HTTPS.
//
// Needs (Debian): skopeo, containerd, docker-registry, openssl. Runs containerd as root in its own
// sandbox (test/helpers/container-clients.ts).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { main } from '../../src/cli/index.js';
import { tempDir } from '../helpers/server.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { makeSkopeo } from '../helpers/skopeo.js';
import { OciLayoutWriter } from '../helpers/oci-layout.js';
import { pushTestImage, startDockerRegistry } from '../helpers/docker-registry.js';
import { requireBinary, startContainerd } from '../helpers/container-clients.js';

t.setTimeout(300_000);

const root = fileURLToPath(new URL('../..', import.meta.url));

/** `wharf serve --config FILE` from the sources; resolves with its https URL once it listens. */
async function serve(t: Test, configFile: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'main.ts'), 'serve', '--config', configFile], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  );
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /listening on (https:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`wharf serve exited ${String(code)}\n${stdout}${stderr}`)));
  });
}

t.test('skopeo and containerd over HTTPS trusting the test CA; the healthcheck over HTTPS', async (t) => {
  requireBinary('containerd');
  requireBinary('ctr');
  const ca = makeTestCa(t);
  const pair = ca.issue('wharf');
  const dir = tempDir('wharf-tls-e2e-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const upstream = await startDockerRegistry(t);
  const hubImage = await pushTestImage(upstream, 'library/testimg', 'latest', { seed: 'tls-clients' });

  const configFile = join(dir, 'wharf.yaml');
  writeFileSync(
    configFile,
    [
      'listen: 127.0.0.1:0',
      `storage: {path: ${join(dir, 'data')}}`,
      'log: {level: warn}',
      'local: {namespaces: [local]}',
      `upstreams: [{name: hub, url: "${upstream.url}", registry: docker.io, default: true}]`,
      `tls: {cert: ${pair.cert}, key: ${pair.key}}`,
      '',
    ].join('\n'),
  );
  const url = await serve(t, configFile);
  const host = new URL(url).host;

  // The healthcheck, as the container image runs it (the config's port is 0, so --listen names it).
  let out = '';
  let err = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: {} };
  t.equal(await main(['healthcheck', '--config', configFile, '--listen', host], io), 0, err);
  t.equal(out, `https://${host}/healthz: ok\n`);

  // skopeo: a cert dir holding the CA (containers-certs.d: *.crt are CAs).
  const certDir = join(dir, 'certs');
  mkdirSync(certDir);
  copyFileSync(ca.caCert, join(certDir, 'ca.crt'));
  const skopeo = makeSkopeo(join(dir, 'skopeo'));
  const w = new OciLayoutWriter();
  const image = w.addImage('wharf-tls-clients', { layerCount: 2 });
  w.tag(image.descriptor, 'ref');
  const layout = join(dir, 'layout');
  w.write(layout);
  await t.rejects(
    skopeo(['copy', '--quiet', `oci:${layout}:ref`, `docker://${host}/local/app:v1`]),
    /x509|certificate/,
    'without the CA skopeo refuses the certificate',
  );
  const digestFile = join(dir, 'pushed');
  await skopeo(['copy', '--quiet', '--preserve-digests', '--dest-cert-dir', certDir, '--digestfile', digestFile, `oci:${layout}:ref`, `docker://${host}/local/app:v1`]);
  t.equal(readFileSync(digestFile, 'utf8').trim(), image.descriptor.digest, 'skopeo pushed over TLS');
  const pulled = join(dir, 'pulled');
  await skopeo(['copy', '--quiet', '--src-cert-dir', certDir, '--digestfile', join(dir, 'pulled-digest'), `docker://${host}/local/app:v1`, `oci:${pulled}:v1`]);
  t.equal(readFileSync(join(dir, 'pulled-digest'), 'utf8').trim(), image.descriptor.digest, 'skopeo pulled it back over TLS');

  // containerd: Wharf as the docker.io mirror, hosts.toml trusting the CA.
  const ctd = await startContainerd(t, join(dir, 'c'), url, { ca: ca.caCert });
  t.match(readFileSync(join(ctd.hostsDir, 'docker.io', 'hosts.toml'), 'utf8'), `ca = "${ca.caCert}"`);
  await ctd.ctr(['images', 'pull', '--snapshotter', 'native', '--hosts-dir', ctd.hostsDir, 'docker.io/library/testimg:latest']);
  const ls = (await ctd.ctr(['images', 'ls'])).stdout;
  const row = ls.split('\n').map((l) => l.trim().split(/\s+/)).find((cols) => cols[0] === 'docker.io/library/testimg:latest');
  t.equal(row?.[2], hubImage.manifestDigest, 'containerd pulled the upstream image through Wharf over TLS', { ls });
  t.ok((await upstream.countRequests({ method: 'GET', pathIncludes: '/blobs/' })) >= 1, 'Wharf filled from the upstream');
  await ctd.stop();
});
