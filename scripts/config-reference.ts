// npm run docs:config: rewrites the README's configuration reference from the schema (src/config/reference.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { withReference } from '../src/config/reference.js';

const file = new URL('../README.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = withReference(before);
if (after !== before) writeFileSync(file, after);
process.stdout.write(after === before ? 'README.md: the configuration reference is up to date\n' : 'README.md: configuration reference rewritten\n');
