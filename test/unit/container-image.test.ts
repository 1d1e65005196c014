// The container image, checked from its Dockerfile (no image can be built here): the properties that
// matter to whoever runs it. The image's settings are a config file, so a mounted config wins; the
// healthcheck follows the configured port; dependencies are installed before the sources are copied;
// and the image's own config file is valid.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { main } from '../../src/cli/index.js';
import { ENV_KEYS, loadConfig } from '../../src/config/load.js';
import { parseListen } from '../../src/config/listen.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile → stages of instructions: continuation lines joined, comments and blank lines dropped. */
export function parseDockerfile(text: string): Instruction[][] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue; // comments may sit inside a continuation too
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  if (current !== '') logical.push(current);
  const stages: Instruction[][] = [];
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const ins = { op: m[1]!.toUpperCase(), args: m[2]!.trim() };
    if (ins.op === 'FROM') stages.push([]);
    stages.at(-1)?.push(ins);
  }
  return stages;
}

/** `ENV A=1 B="2"` and `ENV A 1` → their names and values. */
function envOf(ins: Instruction): Map<string, string> {
  const out = new Map<string, string>();
  if (!/^[^\s=]+=/.test(ins.args)) {
    const [name, ...value] = ins.args.split(/\s+/);
    out.set(name!, value.join(' '));
    return out;
  }
  for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) out.set(m[1]!, m[2]!.replace(/^"|"$/g, ''));
  return out;
}

const dockerfile = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.at(-1)!;
const build = dockerfile[0]!;
const runtimeEnv = new Map(runtime.filter((i) => i.op === 'ENV').flatMap((i) => [...envOf(i)]));

/** Where a file the runtime stage COPYs (from the build context) comes from in the repository. */
function sourceOf(imagePath: string): string | undefined {
  for (const i of runtime) {
    if (i.op !== 'COPY' || i.args.startsWith('--from')) continue;
    const [src, dest] = i.args.split(/\s+/);
    if (dest === imagePath) return join(root, src!);
  }
  return undefined;
}

t.test('the parser reads the forms the checks rely on', async (t) => {
  const [stage] = parseDockerfile('FROM x AS b\n# c\nENV A=1 \\\n    B="two"\nRUN a \\\n# inside\n && b\n');
  t.strictSame(stage, [
    { op: 'FROM', args: 'x AS b' },
    { op: 'ENV', args: 'A=1 B="two"' },
    { op: 'RUN', args: 'a && b' },
  ]);
  t.strictSame([...envOf(stage![1]!)], [['A', '1'], ['B', 'two']]);
  t.strictSame([...envOf({ op: 'ENV', args: 'WHARF_LISTEN 0.0.0.0:5000' })], [['WHARF_LISTEN', '0.0.0.0:5000']]);
});

t.test('the image sets no WHARF_* variable that a config file would lose to', async (t) => {
  for (const stage of dockerfile) {
    for (const i of stage.filter((x) => x.op === 'ENV' || x.op === 'ARG')) {
      const names = i.op === 'ENV' ? [...envOf(i).keys()] : [i.args.split('=')[0]!];
      for (const name of names) t.notOk(ENV_KEYS.has(name), `${i.op} ${name} is not a configuration key`);
    }
  }
  t.equal(runtimeEnv.get('WHARF_CONFIG'), '/etc/wharf/wharf.yaml', 'the image names its config file instead');
  t.ok(sourceOf('/etc/wharf/wharf.yaml'), 'and copies that file into the image');
});

t.test("the image's config file passes verify-config and matches the image's port and volume", async (t) => {
  const file = sourceOf(runtimeEnv.get('WHARF_CONFIG') ?? '');
  if (!file) return t.fail('no config file copied to WHARF_CONFIG');
  const out: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) }, env: {} };
  t.equal(await main(['verify-config', file], io), 0, out.join(''));
  const config = loadConfig({ file });
  const expose = runtime.find((i) => i.op === 'EXPOSE')?.args;
  t.equal(String(parseListen(config.listen).port), expose, 'listens on the EXPOSEd port');
  const volume = runtime.find((i) => i.op === 'VOLUME')?.args;
  t.equal(volume, JSON.stringify([config.storage.path]), 'keeps its data on the VOLUME');
});

t.test("a config file mounted over the image's one decides listen and storage.path", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-image-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mounted = join(dir, 'wharf.yaml');
  writeFileSync(mounted, 'listen: 0.0.0.0:6000\nstorage:\n  path: /srv/wharf\n');
  // The environment the image's process starts with, its config file now the mounted one.
  const env = { ...Object.fromEntries(runtimeEnv), WHARF_CONFIG: mounted };
  const config = loadConfig({ file: env.WHARF_CONFIG, env });
  t.equal(config.listen, '0.0.0.0:6000');
  t.equal(config.storage.path, '/srv/wharf');
});

t.test('dependencies are installed before the sources are copied', async (t) => {
  const at = (pred: (i: Instruction) => boolean): number => build.findIndex(pred);
  const manifests = at((i) => i.op === 'COPY' && /\bpackage\.json\b/.test(i.args) && /\bpackage-lock\.json\b/.test(i.args));
  const install = at((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
  const sources = at((i) => i.op === 'COPY' && /(^|\s)(\.\/)?src\/?\s/.test(i.args));
  t.ok(manifests >= 0 && install >= 0 && sources >= 0, 'COPY package*.json, RUN npm ci and COPY src are all there');
  t.ok(manifests < install, 'package.json and package-lock.json are copied before npm ci');
  t.ok(install < sources, 'npm ci runs before src is copied');
  const before = build.slice(0, install).filter((i) => i.op === 'COPY').map((i) => i.args);
  t.strictSame(before, ['package.json package-lock.json ./'], 'nothing else is copied before npm ci');
});

t.test('the healthcheck asks the port the configuration sets', async (t) => {
  const hc = runtime.find((i) => i.op === 'HEALTHCHECK');
  const cmd = /\bCMD\s+(\[.*\])\s*$/.exec(hc?.args ?? '');
  if (!cmd) return t.fail(`HEALTHCHECK CMD in exec form: ${hc?.args}`);
  const entry = JSON.parse(runtime.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
  t.strictSame(JSON.parse(cmd[1]!), [...entry, 'healthcheck'], 'wharf healthcheck, which reads the configuration as serve does');
  t.notMatch(hc!.args, /:5000|\b5000\b/, 'no port written into the healthcheck');
});

t.test("the image ships the dashboard's files beside dist/, where the server looks for them", async (t) => {
  t.equal(sourceOf('./dashboard'), join(root, 'dashboard'), 'COPY dashboard ./dashboard in the runtime stage');
  t.ok(runtime.some((i) => i.op === 'COPY' && /\/app\/dist \.\/dist$/.test(i.args)), 'dist/ sits in the same folder (/app)');
});
