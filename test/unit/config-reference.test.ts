// The README's configuration reference is the schema's: regenerating it (npm run docs:config) changes nothing,
// every key and every WHARF_* variable is in it, and a key added to the schema without regenerating is caught.
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import t from 'tap';
import { ENV_KEYS } from '../../src/config/load.js';
import { REFERENCE_END, REFERENCE_START, configReference, withReference } from '../../src/config/reference.js';
import { ConfigSchema } from '../../src/config/schema.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf(REFERENCE_START), readme.indexOf(REFERENCE_END) + REFERENCE_END.length);

t.test('the README holds the reference the schema generates (run npm run docs:config after changing the schema)', async (t) => {
  t.ok(readme.includes(REFERENCE_START) && readme.includes(REFERENCE_END), 'the markers are in the README');
  t.equal(section, configReference(), 'the reference between them is the generated one');
  t.equal(withReference(readme), readme, 'regenerating changes nothing');
});

t.test('every key of the schema has its row, with its variable', async (t) => {
  for (const [name, { path }] of ENV_KEYS) {
    t.match(section, new RegExp(`^\\| \`${path.join('\\.')}\` \\|[^\\n]*\`${name}( \\(JSON\\))?\` \\|`, 'm'), `${path.join('.')} (${name})`);
  }
  const upstreamKeys = Object.keys((ConfigSchema.properties.upstreams.items as { properties: object }).properties);
  for (const key of upstreamKeys) t.match(section, `| \`upstreams[].${key}`, `upstreams[].${key}`);
});

t.test('a key added to the schema and not regenerated is caught', async (t) => {
  const grown = Type.Object({ ...ConfigSchema.properties, extra: Type.Boolean({ default: true, description: 'a key added later' }) });
  const reference = configReference(grown);
  t.not(section, reference, 'the README no longer matches');
  t.match(reference, '| `extra` | boolean | `true` | `WHARF_EXTRA` | a key added later |', 'and the new row says what the key is');
  t.throws(() => withReference('no markers here'), /markers/, 'a README without the markers is an error, not silently left alone');
});
