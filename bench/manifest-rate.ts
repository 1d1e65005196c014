// Manifest GET/HEAD rate: Wharf builds side by side with nginx serving the same manifest bytes
// (sendfile, the physical limit). The reference registry is the upstream; 20 images are pushed to it
// (`library/app:t0..t19`, every other one an index) and the same 20 to each Wharf's local namespace
// (`team/app`). After one GET per tag (both names) and 2 s of GETs to warm every server alike, each round measures, for a local name and an
// upstream (pull-through) name, by tag and by digest:
//   GET   wrk -t2 -c32 -d<seconds>s, round-robin over the 20 references (lua), Accept: the OCI and Docker types
//   HEAD  ab -k -c32 -t <seconds>, one reference (ab takes one URL)
// Wharf runs at its default log level (info: one line per request, to a file).
//
// Usage: node --import tsx bench/manifest-rate.ts
// Environment:
//   BENCH_WHARF    name=path/to/dist/main.js,... (default: wharf=<this tree>/dist/main.js)
//   BENCH_SECONDS  per measurement (default 8)
//   BENCH_LOCK     a lock file: the measurements (not the setup) run under `flock -x` on it
// Prints a table, then one JSON line. Figures are reported, not enforced.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { pushTestImage, startDockerRegistry, type PushedImage } from '../test/helpers/docker-registry.js';
import { MANIFEST_ACCEPT } from './lib/clients.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const TAGS = 20;
const ACCEPT = MANIFEST_ACCEPT;
const root = fileURLToPath(new URL('..', import.meta.url));
const builds = (process.env.BENCH_WHARF ?? `wharf=${join(root, 'dist/main.js')}`).split(',').map((s) => {
  const [name, main] = s.split('=') as [string, string];
  return { name, main };
});

const teardowns: Array<() => unknown> = [];
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) };
const log = (msg: string) => console.error(`[bench ${(performance.now() / 1000).toFixed(1)}s] ${msg}`);
const work = mkdtempSync(join(tmpdir(), 'wharf-bench-manifests-'));
// nginx workers run as another user when started by root: the document root must be readable.
chmodSync(work, 0o755);
t.teardown(() => rmSync(work, { recursive: true, force: true }));

interface Server {
  name: string;
  base: string;
  /** Path prefixes by kind of name. */
  names: { local?: string; upstream?: string; static?: string };
}

async function waitFor(file: string, re: RegExp, child: ChildProcess): Promise<RegExpExecArray> {
  for (let i = 0; i < 300; i++) {
    const m = existsSync(file) ? re.exec(readFileSync(file, 'utf8')) : null;
    if (m) return m;
    if (child.exitCode !== null) throw new Error(`${file}: process exited (${child.exitCode})`);
    await sleep(100);
  }
  throw new Error(`${file}: ${re} not seen`);
}

async function startWharf(name: string, main: string, upstream: string): Promise<Server & { pid: number }> {
  const dir = join(work, name);
  mkdirSync(dir);
  const configFile = join(dir, 'wharf.yaml');
  writeFileSync(configFile, toYaml({ upstreams: [{ name: 'hub', url: upstream, registry: 'docker.io', default: true }], local: { namespaces: ['team'] } }));
  const out = join(dir, 'stdout.log');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(out, 'a');
  const env = { ...process.env };
  delete env.WHARF_LOG_LEVEL;
  const child = spawn(process.execPath, [...(process.env.BENCH_WHARF_NODE_ARGS ?? '').split(' ').filter(Boolean), main, 'serve', '--config', configFile, '--listen', '127.0.0.1:0', '--data', join(dir, 'data')], {
    stdio: ['ignore', fd, 'inherit'],
    env,
    cwd: dir,
  });
  closeSync(fd);
  process.once('exit', () => child.kill('SIGKILL'));
  t.teardown(async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });
  const m = await waitFor(out, /listening on (http:\/\/[^\s"]+)/, child);
  return { name, base: m[1] as string, pid: child.pid as number, names: { local: 'team/app', upstream: 'library/app' } };
}

async function startNginx(images: PushedImage[]): Promise<Server> {
  const dir = join(work, 'nginx');
  const docroot = join(dir, 'root');
  const manifests = join(docroot, 'v2/library/app/manifests');
  mkdirSync(manifests, { recursive: true });
  images.forEach((img, i) => {
    writeFileSync(join(manifests, `t${i}`), img.manifest);
    writeFileSync(join(manifests, img.manifestDigest), img.manifest);
  });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  default_type application/vnd.oci.image.manifest.v1+json;
  server { listen 127.0.0.1:${port}; root ${docroot}; }
}
`,
  );
  const child = spawn('nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: 'inherit' });
  t.teardown(async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/v2/library/app/manifests/t0`)).ok) return { name: 'nginx', base, names: { static: 'library/app' } };
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error(`nginx did not start: ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8').slice(-500) : ''}`);
}

interface Case {
  kind: 'local' | 'upstream' | 'static';
  by: 'tag' | 'digest';
  method: 'GET' | 'HEAD';
}

function luaScript(paths: string[]): string {
  return `local paths = { ${paths.map((p) => JSON.stringify(p)).join(', ')} }
local i = 0
wrk.headers["Accept"] = ${JSON.stringify(ACCEPT)}
request = function()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
`;
}

interface Figure {
  server: string;
  case: string;
  rps: number;
  p99ms: number;
  errors: number;
}

function parseWrk(text: string): { rps: number; p99ms: number; errors: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const p = /\s99%\s+([\d.]+)(us|ms|s)/.exec(text);
  const unit = p?.[2] === 'us' ? 0.001 : p?.[2] === 's' ? 1000 : 1;
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errs = sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, p99ms: Number(p?.[1] ?? NaN) * unit, errors: non2xx + errs };
}

function parseAb(text: string): { rps: number; p99ms: number; errors: number } {
  const rps = Number(/Requests per second:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const p99 = Number(/\s99%\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const failed = Number(/Failed requests:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  return { rps, p99ms: p99, errors: failed + non2xx };
}

async function main(): Promise<void> {
  log('upstream: the reference registry, 20 images');
  const upstream = await startDockerRegistry(t);
  const images: PushedImage[] = [];
  for (let i = 0; i < TAGS; i++) images.push(await pushTestImage(upstream, 'library/app', `t${i}`, { seed: i, index: i % 2 === 0 }));

  const servers: Server[] = [await startNginx(images)];
  for (const b of builds) {
    log(`wharf ${b.name}: ${b.main}`);
    const w = await startWharf(b.name, b.main, upstream.url);
    const host = w.base.replace('http://', '');
    for (let i = 0; i < TAGS; i++) await pushTestImage({ host }, 'team/app', `t${i}`, { seed: i, index: i % 2 === 0 });
    // One GET per tag, both names.
    for (const n of ['team/app', 'library/app']) {
      for (let i = 0; i < TAGS; i++) {
        const res = await fetch(`${w.base}/v2/${n}/manifests/t${i}`, { headers: { accept: ACCEPT } });
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status !== 200 || !body.equals(images[i]!.manifest)) throw new Error(`${b.name} ${n}:t${i}: ${res.status}`);
      }
    }
    servers.push(w);
  }

  const cases: Case[] = [];
  for (const method of ['GET', 'HEAD'] as const) for (const by of ['tag', 'digest'] as const) for (const kind of ['local', 'upstream'] as const) cases.push({ kind, by, method });

  // One shell script for every measurement, interleaved between the servers, run under the lock.
  const lines = ['set -e'];
  const outputs: Array<{ server: string; label: string; file: string; tool: 'wrk' | 'ab' }> = [];
  let n = 0;
  const refs = (by: 'tag' | 'digest') => images.map((img, i) => (by === 'tag' ? `t${i}` : img.manifestDigest));
  // Every server warmed up alike first (the JIT, the first connections), not recorded.
  for (const s of servers) {
    const prefix = s.names.local ?? s.names.static;
    const lua = join(work, `warm-${s.name}.lua`);
    writeFileSync(lua, luaScript(refs('tag').map((r) => `/v2/${prefix}/manifests/${r}`)));
    lines.push(`wrk -t2 -c32 -d2s -s ${lua} ${s.base} > /dev/null 2>&1`);
  }
  for (const c of cases) {
    for (const s of servers) {
      const name = c.kind === 'local' ? s.names.local : s.names.upstream;
      // nginx has no local/upstream distinction: measured once per method and reference kind.
      const prefix = name ?? (c.kind === 'local' ? s.names.static : undefined);
      if (!prefix) continue;
      const label = s.names.static ? `${c.method} by ${c.by}` : `${c.method} ${c.kind} by ${c.by}`;
      const file = join(work, `out-${n++}.txt`);
      const paths = refs(c.by).map((r) => `/v2/${prefix}/manifests/${r}`);
      if (c.method === 'GET') {
        const lua = join(work, `paths-${n}.lua`);
        writeFileSync(lua, luaScript(paths));
        lines.push(`wrk -t2 -c32 -d${SECONDS}s --latency -s ${lua} ${s.base} > ${file} 2>&1`);
        outputs.push({ server: s.name, label, file, tool: 'wrk' });
      } else {
        lines.push(`ab -k -c32 -t ${SECONDS} -n 100000000 -i -H 'Accept: ${ACCEPT}' ${s.base}${paths[0]} > ${file} 2>&1`);
        outputs.push({ server: s.name, label, file, tool: 'ab' });
      }
      lines.push('sleep 1');
    }
  }
  const script = join(work, 'measure.sh');
  writeFileSync(script, lines.join('\n') + '\n');
  log(`measuring: ${outputs.length} runs of ${SECONDS} s${process.env.BENCH_LOCK ? ` under flock -x ${process.env.BENCH_LOCK}` : ''}`);
  const run = process.env.BENCH_LOCK ? spawnSync('flock', ['-x', process.env.BENCH_LOCK, 'sh', script], { stdio: 'inherit' }) : spawnSync('sh', [script], { stdio: 'inherit' });
  if (run.status !== 0) throw new Error(`measurement script failed (${run.status})`);

  const figures: Figure[] = outputs.map((o) => {
    const text = readFileSync(o.file, 'utf8');
    return { server: o.server, case: o.label, ...(o.tool === 'wrk' ? parseWrk(text) : parseAb(text)) };
  });
  const labels = [...new Set(figures.filter((f) => f.server !== 'nginx').map((f) => f.case))];
  const names = servers.map((s) => s.name);
  console.log(`| case | ${names.map((x) => `${x} req/s (p99 ms)`).join(' | ')} |`);
  console.log(`|---|${names.map(() => '---').join('|')}|`);
  for (const label of labels) {
    const generic = label.replace(/ (local|upstream)/, '');
    const cells = names.map((sn) => {
      const f = figures.find((x) => x.server === sn && x.case === (sn === 'nginx' ? generic : label));
      return f ? `${Math.round(f.rps)} (${f.p99ms.toFixed(2)})${f.errors ? ` ERR ${f.errors}` : ''}` : '—';
    });
    console.log(`| ${label} | ${cells.join(' | ')} |`);
  }
  console.log(JSON.stringify({ seconds: SECONDS, figures }));
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const fn of teardowns.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`teardown: ${(err as Error).message}`);
      }
    }
  });
