// OCI distribution-spec conformance: the Push workflow, once with sha256 and once with sha512 digests.
import t from 'tap';
import { startWharf } from '../helpers/server.js';
import { runConformance } from './workflows.js';

const server = await startWharf(t);
// Wharf mounts a blob named by ?mount= without ?from= when it is linked in a repository the caller
// may pull (automatic content discovery; with auth off, any repository).
for (const algorithm of ['sha256', 'sha512'] as const) {
  await t.test(`OCI conformance, Push (${algorithm})`, (t) =>
    runConformance(t, { algorithm, baseUrl: server.url, workflows: ['push'], automaticCrossmount: true }),
  );
}
