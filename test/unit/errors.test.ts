import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CATALOGUE, RegistryError } from '../../src/registry/errors.js';

t.test('docs/errors.md lists every catalogue code with its status, and nothing else', async (t) => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| ([A-Z_]+) \| (\d{3}) \|/gm)) rows.set(m[1] as string, Number(m[2]));
  t.same([...rows.keys()].sort(), Object.keys(ERROR_CATALOGUE).sort());
  for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) t.equal(rows.get(code), status, code);
});

t.test('a RegistryError takes its status from the catalogue unless told otherwise', async (t) => {
  t.equal(new RegistryError('MANIFEST_UNKNOWN').status, 404);
  t.equal(new RegistryError('SIZE_INVALID', 'too big', { status: 413 }).status, 413);
  t.equal(new RegistryError('DENIED').message, ERROR_CATALOGUE.DENIED.description);
});
