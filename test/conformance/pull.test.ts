// OCI distribution-spec conformance: the Pull workflow, once with sha256 and once with sha512 digests.
import t from 'tap';
import { startWharf } from '../helpers/server.js';
import { runConformance } from './workflows.js';

const server = await startWharf(t);
for (const algorithm of ['sha256', 'sha512'] as const) {
  await t.test(`OCI conformance, Pull (${algorithm})`, (t) =>
    runConformance(t, { algorithm, baseUrl: server.url, workflows: ['pull'] }),
  );
}
