// The log is written once per event-loop turn (src/http/log-destination.ts): every request's line
// still reaches standard output, in order, also when the server stops on SIGTERM right after.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ensureBuilt } from '../helpers/build.js';
import { TurnBufferedDestination } from '../../src/http/log-destination.js';

const BIN = join(fileURLToPath(new URL('../../', import.meta.url)), 'bin', 'wharf.js');

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-log-flush-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('lines of one turn are written together when it ends; close() writes what is pending', async (t) => {
  const file = join(tempDir(t), 'out.log');
  const fd = openSync(file, 'w');
  t.teardown(() => closeSync(fd));
  const dest = new TurnBufferedDestination(fd);
  dest.write('{"n":1}\n');
  dest.write('{"n":2}\n');
  t.equal(readFileSync(file, 'utf8'), '', 'nothing written during the turn');
  await turn();
  t.equal(readFileSync(file, 'utf8'), '{"n":1}\n{"n":2}\n', 'both lines once the turn ended, in order');
  dest.write('{"n":3}\n');
  dest.close();
  t.equal(readFileSync(file, 'utf8'), '{"n":1}\n{"n":2}\n{"n":3}\n', 'close() wrote the pending line at once');
});

t.test('lines logged in the turn the process exits in are written', async (t) => {
  const module = join(fileURLToPath(new URL('../../', import.meta.url)), 'src', 'http', 'log-destination.ts');
  const script = `import { TurnBufferedDestination } from ${JSON.stringify(module)};
const d = new TurnBufferedDestination(1);
d.write('{"n":1}\\n');
d.write('{"n":2}\\n');
process.exit(3);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.equal(code, 3);
  t.equal(out, '{"n":1}\n{"n":2}\n', 'written on exit');
});

t.test('every request line is in the log of a server stopped by SIGTERM right after its requests', async (t) => {
  ensureBuilt((m) => t.comment(m));
  const dir = tempDir(t);
  const config = join(dir, 'wharf.yaml');
  writeFileSync(config, `storage:\n  path: ${join(dir, 'data')}\n`);
  const out = join(dir, 'stdout.log');
  const fd = openSync(out, 'w');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
  const child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--listen', '127.0.0.1:0'], { stdio: ['ignore', fd, 'pipe'], env });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let base: string | undefined;
  for (let i = 0; i < 200 && base === undefined; i++) {
    base = /listening on (http:\/\/[^\s"]+)/.exec(readFileSync(out, 'utf8'))?.[1];
    if (base === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  if (base === undefined) throw new Error(`not listening: ${readFileSync(out, 'utf8')}`);
  const n = 200;
  const statuses: number[] = [];
  // In batches below the per-address connection cap.
  for (let b = 0; b < n; b += 50) {
    statuses.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => fetch(`${base}/v2/team/app/manifests/t${b + i}`).then((r) => r.status)))));
  }
  t.same(new Set(statuses), new Set([404]), 'every request answered');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'closed cleanly');
  const lines = readFileSync(out, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; url?: string });
  // serve's own start-up request to itself (GET /v2/) is logged too; the test's requests are the manifests.
  const urls = new Set(lines.filter((l) => l.msg === 'request' && l.url?.includes('/manifests/')).map((l) => l.url));
  t.equal(urls.size, n, 'one line per request, none lost');
});
