// Process tests run the compiled CLI (bin/wharf.js → dist/): build first when dist/ is missing or
// older than the sources, so they always exercise the current code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function ensureBuilt(comment: (message: string) => void): void {
  const distMain = join(root, 'dist', 'main.js');
  const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const newest = Math.max(...sources.map((f) => statSync(join(root, 'src', f)).mtimeMs));
  if (existsSync(distMain) && statSync(distMain).mtimeMs >= newest) return;
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  // Type errors elsewhere still emit JavaScript; they are the type-check's to report, not this test's.
  if (build.status !== 0) comment(`npm run build exited ${build.status}:\n${build.stdout}${build.stderr}`);
  if (!existsSync(distMain)) throw new Error(`npm run build did not produce dist/main.js:\n${build.stdout}${build.stderr}`);
}
