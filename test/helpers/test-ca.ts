// A certificate authority for tests, made with the openssl command line in a temp dir: its
// certificate (ca.crt, what clients are told to trust) and server certificates it signs for
// 127.0.0.1, ::1 and localhost (what Wharf or an upstream serves). Clients that verify (skopeo,
// containerd, curl, undici) accept them without any insecure flag.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export interface ServerCert {
  /** PEM file of the certificate. */
  cert: string;
  /** PEM file of its private key. */
  key: string;
  /** Its SHA-256 fingerprint as node prints it (tls getPeerCertificate().fingerprint256). */
  fingerprint256: string;
}

export interface TestCa {
  dir: string;
  /** PEM file of the CA's certificate. */
  caCert: string;
  caPem: string;
  /** A new server certificate (and key) for 127.0.0.1, ::1 and localhost, written under `name`. */
  issue(name: string): ServerCert;
}

const openssl = (args: string[], cwd: string): string => execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A fresh CA in its own temp dir, removed at teardown. */
export function makeTestCa(t: Teardownable, commonName = 'Wharf Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-test-ca-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  let issued = 0;
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    issue(name: string): ServerCert {
      const cert = join(dir, `${name}.crt`);
      const key = join(dir, `${name}.key`);
      const serial = `1${(++issued).toString(16)}${Date.now().toString(16)}`;
      openssl(['req', ...ec, '-keyout', key, '-out', `${name}.csr`, '-subj', `/CN=localhost/O=${name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${serial}`, '-out', cert, '-days', '2', '-extfile', 'server.ext'], dir);
      return { cert, key, fingerprint256: new X509Certificate(readFileSync(cert)).fingerprint256 };
    },
  };
}
