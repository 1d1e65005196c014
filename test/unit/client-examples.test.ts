// Every client configuration in examples/clients/ works with the Wharf config it names: each registry it
// mirrors through Wharf is routed, by that config's router, to the upstream standing for that registry,
// with the remote name the client asked for. Today's trap, pinned: a podman mirror for ghcr.io pointed at
// a config with no ghcr.io upstream sends ghcr.io names to Docker Hub.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { parseListen } from '../../src/config/listen.js';
import type { WharfConfig } from '../../src/config/schema.js';
import { Router } from '../../src/registry/router.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const clientsDir = join(root, 'examples', 'clients');

// ---------------------------------------------------------------------------------------------
// Reading the client files: the TOML subset they use (tables, arrays of tables, strings, booleans,
// string lists, comments), JSON for Docker.

type TomlValue = string | boolean | string[];
interface TomlTable {
  /** `[[registry]]` → "registry", `[host."http://x"]` → `host.http://x`; "" for the top level. */
  name: string;
  values: Record<string, TomlValue>;
}

function tomlValue(raw: string, where: string): TomlValue {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw.startsWith('"')) return JSON.parse(raw) as string;
  if (raw.startsWith('[')) return JSON.parse(raw) as string[];
  throw new Error(`${where}: unsupported TOML value ${raw}`);
}

/** Drops a `#` comment that is not inside a string. */
const uncomment = (line: string): string => line.replace(/^((?:[^"#]|"(?:[^"\\]|\\.)*")*)#.*$/, '$1').trim();

export function readToml(text: string, file: string): TomlTable[] {
  const tables: TomlTable[] = [{ name: '', values: {} }];
  text.split('\n').forEach((raw, i) => {
    const line = uncomment(raw);
    const where = `${file}:${i + 1}`;
    if (line === '') return;
    const header = /^\[\[?\s*([^\]]+?)\s*\]\]?$/.exec(line);
    if (header) {
      tables.push({ name: header[1]!.replace(/"([^"]*)"/g, '$1'), values: {} });
      return;
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) throw new Error(`${where}: cannot read ${JSON.stringify(raw)}`);
    tables.at(-1)!.values[kv[1]!] = tomlValue(kv[2]!, where);
  });
  return tables;
}

// ---------------------------------------------------------------------------------------------
// What each client sends to its mirror for an image of a registry.

interface Pull {
  /** What the client thinks it pulls: the registry and the repository there. */
  registry: string;
  remote: string;
  /** Where it sends the request instead: Wharf's host:port, the repository name and ?ns= as sent. */
  mirrorHost: string;
  name: string;
  ns?: string;
}

/** Repositories each registry is tried with: Docker Hub's official images live under library/. */
const samples = (registry: string): string[] => (registry === 'docker.io' ? ['library/alpine', 'someorg/app'] : ['someorg/app', 'someorg/team/app']);

/**
 * containers-registries.conf(5): a [[registry]] with `prefix` and its [[registry.mirror]] `location`s.
 * An image under the prefix is pulled from a mirror at location + the rest of its name.
 */
function registriesConfPulls(text: string, file: string): Pull[] {
  const pulls: Pull[] = [];
  let prefix: string | undefined;
  for (const table of readToml(text, file)) {
    if (table.name === 'registry') prefix = String(table.values.prefix ?? table.values.location);
    if (table.name !== 'registry.mirror') continue;
    if (prefix === undefined) throw new Error(`${file}: a [[registry.mirror]] before any [[registry]]`);
    const location = String(table.values.location);
    const slash = location.indexOf('/');
    const mirrorHost = slash < 0 ? location : location.slice(0, slash);
    const path = slash < 0 ? '' : `${location.slice(slash + 1)}/`;
    for (const remote of samples(prefix)) pulls.push({ registry: prefix, remote, mirrorHost, name: `${path}${remote}` });
  }
  return pulls;
}

/** containerd hosts.toml in certs.d/<registry>/: every [host."URL"] is asked for /v2/<remote>?ns=<registry>. */
function hostsTomlPulls(text: string, file: string, registry: string): Pull[] {
  const hosts = readToml(text, file).filter((tb) => tb.name.startsWith('host.'));
  if (hosts.length === 0) throw new Error(`${file}: no [host."..."] entry`);
  return hosts.flatMap((h) => {
    const url = new URL(h.name.slice('host.'.length));
    if (url.pathname !== '/' && url.pathname !== '') throw new Error(`${file}: a host URL with a path is not expected here`);
    return samples(registry).map((remote) => ({ registry, remote, mirrorHost: url.host, name: remote, ns: registry }));
  });
}

/** Docker's daemon.json `registry-mirrors`: used for Docker Hub images only, sent as bare names without ?ns=. */
function daemonJsonPulls(text: string): Pull[] {
  const mirrors = (JSON.parse(text) as { 'registry-mirrors'?: string[] })['registry-mirrors'] ?? [];
  return mirrors.flatMap((m) => samples('docker.io').map((remote) => ({ registry: 'docker.io', remote, mirrorHost: new URL(m).host, name: remote })));
}

function pullsOf(file: string): Pull[] {
  const text = readFileSync(file, 'utf8');
  const rel = relative(clientsDir, file);
  if (rel.endsWith('registries.conf')) return registriesConfPulls(text, rel);
  if (rel.endsWith('daemon.json')) return daemonJsonPulls(text);
  const hosts = /^certs\.d\/([^/]+)\/hosts\.toml$/.exec(rel);
  if (hosts) return hostsTomlPulls(text, rel, hosts[1]!);
  throw new Error(`${rel}: a client file this test does not know how to read`);
}

// ---------------------------------------------------------------------------------------------
// Which Wharf config each client file is for: examples/clients/README.md lists them all; files that take
// comments repeat it in their header.

function clientFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? clientFiles(join(dir, e.name)) : e.name === 'README.md' ? [] : [join(dir, e.name)],
  );
}

function pairings(): Map<string, string> {
  const out = new Map<string, string>();
  const readme = readFileSync(join(clientsDir, 'README.md'), 'utf8');
  for (const m of readme.matchAll(/^\|\s*`([^`]+)`\s*\|[^|]*\|\s*`([^`]+)`\s*\|\s*$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

function routesTo(config: WharfConfig, pull: Pull): { registry?: string; remote?: string; kind: string } {
  const router = new Router(config.upstreams, config.local.namespaces);
  const target = router.route(pull.name, pull.ns);
  if (target.kind === 'local') return { kind: 'local' };
  return { kind: 'upstream', registry: config.upstreams.find((u) => u.name === target.upstream)?.registry, remote: target.remote };
}

t.test('the checks catch a mirror routed to the wrong upstream', async (t) => {
  // The mistake this test exists for: a ghcr.io mirror through a config whose only upstream is Docker Hub.
  const config = loadConfig({ file: join(root, 'examples', 'docker-hub-mirror.yaml') });
  const [pull] = registriesConfPulls('[[registry]]\nprefix = "ghcr.io"\n[[registry.mirror]]\nlocation = "w:5000/ghcr.io"\n', 'x');
  t.strictSame(pull, { registry: 'ghcr.io', remote: 'someorg/app', mirrorHost: 'w:5000', name: 'ghcr.io/someorg/app' });
  t.not(routesTo(config, pull!).registry, 'ghcr.io', 'docker-hub-mirror.yaml does not serve ghcr.io');
});

const pairs = pairings();
const files = clientFiles(clientsDir);

t.test('examples/clients/README.md names the Wharf config of every client file, as their headers do', async (t) => {
  t.strictSame([...pairs.keys()].sort(), files.map((f) => relative(clientsDir, f)).sort(), 'one row per client file');
  for (const file of files) {
    const rel = relative(clientsDir, file);
    const header = /^# Wharf config: (\S+)\s*$/m.exec(readFileSync(file, 'utf8'))?.[1];
    if (rel.endsWith('.json')) t.equal(header, undefined, `${rel}: JSON takes no comments, the README says it`);
    else t.equal(header, pairs.get(rel), `${rel}: its header names the same config`);
  }
});

for (const file of files) {
  const rel = relative(clientsDir, file);
  t.test(`${rel}: every registry it mirrors is routed by its Wharf config to that registry's upstream`, async (t) => {
    const configFile = pairs.get(rel);
    if (!configFile) return t.fail(`${rel} names no Wharf config`);
    // Examples that take a password from the environment get a stand-in value.
    const config = loadConfig({ file: join(root, configFile), env: { REGISTRY_PASSWORD: 'example' } });
    const { port } = parseListen(config.listen);
    const pulls = pullsOf(file);
    t.ok(pulls.length > 0, `${rel} mirrors something through Wharf`);
    for (const pull of pulls) {
      const what = `${pull.registry}/${pull.remote} (sent as ${pull.name}${pull.ns ? `?ns=${pull.ns}` : ''})`;
      t.equal(new URL(`http://${pull.mirrorHost}`).port || '80', String(port), `${what}: sent to the port ${configFile} listens on`);
      t.strictSame(routesTo(config, pull), { kind: 'upstream', registry: pull.registry, remote: pull.remote }, `${what}: served by the ${pull.registry} upstream`);
    }
  });
}
