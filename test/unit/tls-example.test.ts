// examples/tls/wharf.yaml passes every check `wharf serve` makes before it starts (verify-config),
// with a certificate, key and upstream CA made by a test CA at the paths the file names.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { checkConfig } from '../../src/cli/preflight.js';
import { tempDir } from '../helpers/server.js';
import { makeTestCa } from '../helpers/test-ca.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

t.test('examples/tls/wharf.yaml is a valid configuration once its files exist', async (t) => {
  const ca = makeTestCa(t);
  const pair = ca.issue('wharf');
  const dir = tempDir('wharf-tls-example-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const text = readFileSync(join(root, 'examples', 'tls', 'wharf.yaml'), 'utf8')
    .replaceAll('/etc/wharf/tls/tls.crt', pair.cert)
    .replaceAll('/etc/wharf/tls/tls.key', pair.key)
    .replaceAll('/etc/wharf/tls/corp-ca.crt', ca.caCert)
    .replaceAll('/var/lib/wharf', join(dir, 'data'))
    .replace('0.0.0.0:5443', '127.0.0.1:5443');
  t.notMatch(text, '/etc/wharf/', 'every path the example names is replaced');
  const file = join(dir, 'wharf.yaml');
  writeFileSync(file, text);
  const config = await checkConfig({ file });
  t.equal(config.tls?.cert, pair.cert);
  t.equal(config.tls?.http2, true);
  t.equal(config.tls?.reloadCheck, 30_000);
  t.match(config.upstreams.find((u) => u.name === 'corp')?.tls.caPem, /BEGIN CERTIFICATE/);

  // The checks serve makes on the key pair: a key of another certificate, a missing file.
  const other = ca.issue('other');
  writeFileSync(file, text.replaceAll(pair.key, other.key));
  await t.rejects(checkConfig({ file }), { message: /tls\.cert: the key in .*other\.key does not belong to the certificate in .*wharf\.crt/ });
  writeFileSync(file, text.replaceAll(pair.cert, join(dir, 'missing.crt')));
  await t.rejects(checkConfig({ file }), { message: /tls\.cert: cannot read .*missing\.crt: ENOENT/ });
});
