// `wharf gc` and `wharf fsck` as operators run them: the compiled bin on a data directory, while a
// `wharf serve` process runs on it, and killed with SIGKILL in the middle of a sweep.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t from 'tap';
import { stringify } from 'yaml';
import { ensureBuilt } from '../helpers/build.js';
import { populateStore } from '../helpers/gc-fixture.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'wharf.js');
t.before(() => ensureBuilt((m) => t.comment(m)));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));
}

function launch(args: string[]): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

async function wharf(args: string[], timeoutMs = 120_000): Promise<Run> {
  const { child, done } = launch(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const run = await done;
  clearTimeout(timer);
  return run;
}

function store(t: Tap, extra: Record<string, unknown> = {}): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-gc-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'wharf.yaml');
  writeFileSync(config, stringify({ storage: { path: join(dir, 'data') }, log: { level: 'warn' }, gc: { grace: '0s', deleteUntagged: true, interval: '0s' }, ...extra }));
  return { dir: join(dir, 'data'), config };
}

interface Tap {
  teardown(fn: () => unknown): void;
}

const REPORT_KEYS = ['manifestsDeleted', 'tagsDeleted', 'blobsDeleted', 'uploadsDeleted', 'bytesReclaimed', 'bytesKept', 'durationMs'];

t.test('wharf gc --dry-run --json reports without deleting; wharf gc deletes; fsck agrees', async (t) => {
  const { dir, config } = store(t);
  await populateStore(dir, { blobs: 400, manifests: 40, repos: 4 });
  const dry = await wharf(['gc', '--config', config, '--dry-run', '--json']);
  t.equal(dry.code, 0, dry.stderr);
  const dryReport = JSON.parse(dry.stdout) as Record<string, number | boolean>;
  for (const k of REPORT_KEYS) t.type(dryReport[k], 'number', `report has ${k}`);
  t.equal(dryReport['dryRun'], true);
  t.equal(dryReport['manifestsDeleted'], 20, 'the 20 untagged manifests would go');
  t.ok((dryReport['blobsDeleted'] as number) >= 200, 'with their layers');

  const real = await wharf(['gc', '--config', config, '--json']);
  t.equal(real.code, 0, real.stderr);
  const report = JSON.parse(real.stdout) as Record<string, number | boolean>;
  t.equal(report['dryRun'], false);
  t.equal(report['manifestsDeleted'], dryReport['manifestsDeleted'], 'the dry run predicted the real one');
  t.equal(report['blobsDeleted'], dryReport['blobsDeleted']);
  t.equal(report['bytesReclaimed'], dryReport['bytesReclaimed']);
  t.ok((report['bytesKept'] as number) > 0);

  const again = await wharf(['gc', '--config', config, '--json']);
  t.equal((JSON.parse(again.stdout) as Record<string, number>)['blobsDeleted'], 0, 'a second run finds nothing');
  const check = await wharf(['fsck', '--config', config]);
  t.equal(check.code, 0, check.stdout + check.stderr);
  t.match(check.stdout, /^ok/);
  const text = await wharf(['gc', '--config', config]);
  t.match(text.stdout, /collection finished in \d+ ms/);
});

t.test('wharf gc runs while wharf serve runs on the same store', async (t) => {
  const { dir, config } = store(t);
  await populateStore(dir, { blobs: 200, manifests: 20, repos: 2 });
  const server = launch(['serve', '--config', config, '--listen', '127.0.0.1:0']);
  t.teardown(() => {
    server.child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('serve did not start in 20 s')), 20_000);
    server.child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
  });
  const run = await wharf(['gc', '--config', config, '--json']);
  t.equal(run.code, 0, run.stderr);
  t.equal((JSON.parse(run.stdout) as Record<string, number>)['manifestsDeleted'], 10);
  // The server still serves what stayed.
  const tags = await fetch(`${url}/v2/fixture/repo-0/tags/list`);
  t.equal(tags.status, 200);
  t.ok(((await tags.json()) as { tags: string[] }).tags.length > 0, 'tagged manifests are still listed');
  const check = await wharf(['fsck', '--config', config, '--json']);
  t.equal(check.code, 0, check.stdout);
});

t.test('SIGKILL in the middle of a sweep leaves no row without its file; the next run cleans up', async (t) => {
  const { dir, config } = store(t);
  await populateStore(dir, { blobs: 20_000, manifests: 2_000, repos: 20 });
  // Kill the collector as soon as blob rows start to go: in the middle of the sweep.
  const db = new Database(join(dir, 'metadata.db'), { readonly: true });
  t.teardown(() => db.close());
  const countBlobs = () => (db.prepare('SELECT COUNT(*) AS n FROM blobs').get() as { n: number }).n;
  const before = countBlobs();
  const { child, done } = launch(['gc', '--config', config, '--json']);
  let during = before;
  const deadline = Date.now() + 60_000;
  while (child.exitCode === null && Date.now() < deadline) {
    during = countBlobs();
    if (during <= before - 3000) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  const killed = await done;
  t.equal(killed.signal, 'SIGKILL', 'the collector was killed before it finished');
  const left = countBlobs();
  t.ok(left < before, `the sweep had started (${before} blob rows before, ${left} after the kill)`);
  t.ok(left > before - 12_000, 'and had not finished');
  const check = await wharf(['fsck', '--config', config, '--json']);
  const result = JSON.parse(check.stdout) as { missingFiles: string[]; danglingReferences: string[]; badTags: string[]; orphanFiles: string[] };
  t.strictSame(result.missingFiles, [], 'no metadata row without its file');
  t.strictSame(result.danglingReferences, [], 'no reference to a removed blob');
  t.strictSame(result.badTags, [], 'no tag to a removed manifest');
  t.comment(`orphan files after the kill: ${result.orphanFiles.length}`);

  const next = await wharf(['gc', '--config', config, '--json']);
  t.equal(next.code, 0, next.stderr);
  const after = await wharf(['fsck', '--config', config, '--json']);
  t.equal(after.code, 0, after.stdout);
  t.strictSame((JSON.parse(after.stdout) as { orphanFiles: string[] }).orphanFiles, [], 'orphans removed by the next run');
});
