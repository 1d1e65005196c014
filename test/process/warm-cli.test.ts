// `wharf warm` as operators run it: the compiled bin against a `wharf serve` process in front of the
// reference registry, its output not a terminal (plain lines per image, then the summary), exit status 0
// when every image was warmed and 1 when one failed.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { ensureBuilt } from '../helpers/build.js';
import { startDockerRegistry } from '../helpers/docker-registry.js';
import { pushWarmImage, stored } from '../helpers/warm-upstream.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'bin', 'wharf.js');
t.before(() => ensureBuilt((m) => t.comment(m)));
t.setTimeout(300_000);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const cleanEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WHARF_')));

function launch(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...cleanEnv(), ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

async function wharf(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const { child, done } = launch(args, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const run = await done;
  clearTimeout(timer);
  return run;
}

/** `wharf serve --config FILE` on a free port, stopped at the end of the test; its URL. */
async function serve(t: Test, config: string): Promise<string> {
  const server = launch(['serve', '--config', config, '--listen', '127.0.0.1:0']);
  t.teardown(async () => {
    server.child.kill('SIGTERM');
    await server.done;
  });
  return new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('serve did not start in 20 s')), 20_000);
    server.child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
}

t.test('wharf warm against a running server: plain lines, a summary, exit 1 when an image fails', async (t) => {
  const own = await startDockerRegistry(t);
  const image = await pushWarmImage(own, 'library/multi', 'v1', 'warm-cli/multi');
  const dir = mkdtempSync(join(tmpdir(), 'wharf-warm-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'wharf.yaml');
  const data = join(dir, 'data');
  writeFileSync(config, stringify({ storage: { path: data }, log: { level: 'warn' }, gc: { interval: '0s' }, upstreams: [{ name: 'hub', url: own.url, registry: 'docker.io' }] }));
  const url = await serve(t, config);

  const first = await wharf(['warm', '--server', url, '--referrers', 'docker.io/library/multi:v1']);
  t.comment(`wharf warm --referrers docker.io/library/multi:v1\n${first.stdout}`);
  t.equal(first.code, 0, first.stderr);
  const lines = first.stdout.split('\n');
  t.match(lines[0], /^warm job [0-9a-f-]{36}: 1 image$/);
  t.match(lines[1], new RegExp(`^done    docker\\.io/library/multi:v1: 5 manifests, ${image.allBlobs.length}/${image.allBlobs.length} blobs, .* fetched, 0 B already cached$`));
  t.equal(
    lines.slice(2).join('\n'),
    [
      'warm finished',
      '  images:               1',
      '  manifests:            5',
      `  blobs:                ${image.allBlobs.length}`,
      `  bytes fetched:        ${image.allBytes} (${(image.allBytes / 1024).toFixed(1)} KiB)`,
      '  bytes already cached: 0 (0 B)',
      '  failures:             0',
      '',
    ].join('\n'),
  );
  for (const d of image.allBlobs) t.ok(stored(data, d), `${d} cached`);

  const list = join(dir, 'images.txt');
  writeFileSync(list, '# what the rollout needs\nmulti:v1\n\nlibrary/nothing:v9  # not pushed\n');
  const second = await wharf(['warm', '--server', url, '--platform', 'linux/amd64', '--file', list]);
  t.comment(`wharf warm --platform linux/amd64 --file images.txt\n${second.stdout}`);
  t.equal(second.code, 1, 'an image failed: exit status 1');
  t.match(second.stdout, /^done {4}multi:v1: 2 manifests, \d+\/\d+ blobs, 0 B fetched, .* already cached$/m);
  t.match(second.stdout, /^failed {2}library\/nothing:v9: .*library\/nothing.*$/m);
  t.match(second.stdout, /warm finished with failures\n {2}images: {15}2\n/);
  t.match(second.stdout, / {2}failures: {13}1\n {4}library\/nothing:v9: .+\n$/);

  // On a terminal (script(1) gives it one): bars for the image and all images, redrawn in place, then the summary.
  const tty = await new Promise<Run>((resolve) => {
    const command = [process.execPath, BIN, 'warm', '--server', url, 'multi:v1'].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...cleanEnv(), COLUMNS: '160', LINES: '40' } });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr: '' }));
  });
  t.equal(tty.code, 0, tty.stdout);
  const screen = tty.stdout.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g'), '');
  t.match(screen, /█+ all images {2}\d+\/\d+ blobs/, 'an overall bar');
  t.match(screen, /█+ multi:v1 {2}\d+\/\d+ blobs .* done/, 'a bar for the image');
  t.notMatch(screen, /^done {4}multi:v1/m, 'no plain lines');
  t.match(screen, /warm finished\r?\n {2}images: {15}1\r?\n/, 'the summary');

  // Without --server: where the configuration (here with --listen, as serve takes it) listens.
  const port = new URL(url).port;
  const configured = await wharf(['warm', '--config', config, '--listen', `127.0.0.1:${port}`, 'multi:v1']);
  t.equal(configured.code, 0, configured.stderr);
  t.match(configured.stdout, /^done {4}multi:v1: /m);
  const portZero = await wharf(['warm', '--config', config, '--listen', '127.0.0.1:0', 'multi:v1']);
  t.equal(portZero.code, 2);
  t.match(portZero.stderr, /listens on port 0 .*give --server URL/);

  const usage = await wharf(['warm', '--server', url]);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /warm needs at least one IMAGE/);
  const bad = await wharf(['warm', '--server', url, 'Bad:Name']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /INVALID_REQUEST: image "Bad:Name"/);
  const nobody = await wharf(['warm', '--server', 'http://127.0.0.1:1', 'alpine']);
  t.equal(nobody.code, 1);
  t.match(nobody.stderr, /cannot reach http:\/\/127\.0\.0\.1:1\/api\/warm/);
});

t.test('wharf warm with auth on: an admin\'s access token (--token or WHARF_TOKEN) is sent as Bearer', async (t) => {
  const own = await startDockerRegistry(t);
  await pushWarmImage(own, 'library/multi', 'v1', 'warm-cli/token');
  const dir = mkdtempSync(join(tmpdir(), 'wharf-warm-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'wharf.yaml');
  writeFileSync(
    config,
    stringify({
      storage: { path: join(dir, 'data') },
      log: { level: 'warn' },
      gc: { interval: '0s' },
      upstreams: [{ name: 'hub', url: own.url, registry: 'docker.io' }],
      auth: { users: [{ name: 'root', password: bcrypt.hashSync('root-pw', 4), groups: ['admin'] }] },
    }),
  );
  const url = await serve(t, config);
  const tokenFor = async (scope: string): Promise<string> => {
    const res = await fetch(`${url}/auth/token?service=wharf&scope=${scope}`, { headers: { authorization: `Basic ${Buffer.from('root:root-pw').toString('base64')}` } });
    return ((await res.json()) as { token: string }).token;
  };
  const manage = await tokenFor('wharf:api:manage');

  const flag = await wharf(['warm', '--server', url, '--token', manage, 'docker.io/library/multi:v1']);
  t.equal(flag.code, 0, flag.stderr);
  t.match(flag.stdout, /^done {4}docker\.io\/library\/multi:v1: /m, '--token');
  const env = await wharf(['warm', '--server', url, 'docker.io/library/multi:v1'], { WHARF_TOKEN: manage });
  t.equal(env.code, 0, env.stderr);
  t.match(env.stdout, /^done {4}docker\.io\/library\/multi:v1: .* 0 B fetched/m, 'WHARF_TOKEN (everything already cached)');

  const pull = await wharf(['warm', '--server', url, '--token', await tokenFor('repository:docker.io/library/multi:pull'), 'multi:v1']);
  t.equal(pull.code, 1, 'a token without the scope is refused');
  t.match(pull.stderr, /UNAUTHORIZED: .*wharf:api:manage/);
  const anonymous = await wharf(['warm', '--server', url, 'multi:v1']);
  t.equal(anonymous.code, 1);
  t.match(anonymous.stderr, /--token/, 'the hint names --token');
  const both = await wharf(['warm', '--server', url, '--token', manage, '--user', 'root', '--password', 'root-pw', 'multi:v1']);
  t.equal(both.code, 2);
  t.match(both.stderr, /not both/);
  const broken = await wharf(['warm', '--server', url, 'multi:v1'], { WHARF_TOKEN: 'a b' });
  t.equal(broken.code, 2, 'a token that cannot be a header value');
  t.match(broken.stderr, /WHARF_TOKEN/);
});
