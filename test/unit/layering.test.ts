// The dependency rule (.dependency-cruiser.cjs, `npm run lint:deps`) has teeth: on a copy of src/ it passes as the
// tree is, and it reports an upward import planted into storage/, type-only or not, under the rule's name.
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../../', import.meta.url));
const depcruise = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

/** The violations dependency-cruiser finds in `dir`'s src/ with `dir`'s config. */
function violations(dir: string): Promise<Violation[]> {
  return new Promise((resolve, reject) => {
    const args = [depcruise, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'];
    // It exits with the number of errors it found: the JSON on stdout is the answer either way.
    execFile(process.execPath, args, { cwd: dir, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      try {
        resolve((JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations);
      } catch {
        reject(new Error(`dependency-cruiser gave no report (${err?.message ?? 'exit 0'}): ${stderr}`));
      }
    });
  });
}

const copy = mkdtempSync(join(tmpdir(), 'wharf-layering-'));
t.teardown(() => rmSync(copy, { recursive: true, force: true }));
cpSync(join(root, 'src'), join(copy, 'src'), { recursive: true });
for (const file of ['.dependency-cruiser.cjs', 'tsconfig.json', 'package.json']) cpSync(join(root, file), join(copy, file));
symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir');

t.test('the tree as it is keeps the dependency rule', async (t) => {
  t.same(await violations(copy), []);
});

t.test('an upward import planted into storage/ is reported under the rule it breaks', async (t) => {
  const http = readdirSync(join(copy, 'src', 'http')).find((name) => name.endsWith('.ts'));
  if (http === undefined) throw new Error('no module in src/http to import');
  // Type-only counts: it ties storage to the registry's errors all the same.
  appendFileSync(join(copy, 'src', 'storage', 'blob-store.ts'), "\nimport type { RegistryError } from '../registry/errors.js';\n");
  appendFileSync(join(copy, 'src', 'storage', 'storage-errors.ts'), `\nimport '../http/${http.replace(/\.ts$/, '.js')}';\n`);

  const found = await violations(copy);
  const seen = (rule: string, from: string, to: string) =>
    found.some((v) => v.rule.name === rule && v.from === `src/${from}` && v.to === `src/${to}`);
  t.ok(seen('storage-imports-only-oci', 'storage/blob-store.ts', 'registry/errors.ts'), 'storage → registry (type-only)');
  t.ok(seen('storage-imports-only-oci', 'storage/storage-errors.ts', `http/${http}`), 'storage → http');
  t.ok(seen('only-cli-imports-http', 'storage/storage-errors.ts', `http/${http}`), 'only the CLI and app.ts import http');
});
