// The multi-node examples (examples/multi-node/: docker-compose.yml with nginx.conf and wharf.yaml, and the
// Kubernetes manifests in kubernetes/) start, as far as this machine can tell without running them: every
// Wharf configuration in them is loaded and checked exactly as `wharf verify-config` would in the container,
// with the environment, secrets and volumes the setup gives that container (laid out under a temp dir that
// stands for its file system); and the names and ports the files share agree: the Secret keys and services
// they refer to exist, the variables the configuration names are set, the load balancer sends to the port the
// nodes listen on, the database and the bucket the nodes use are the ones the setup provides.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import { checkConfig } from '../../src/cli/preflight.js';
import { ConfigError, envVarName } from '../../src/config/load.js';
import { parseListen } from '../../src/config/listen.js';
import type { WharfConfig } from '../../src/config/schema.js';
import { KUBERNETES_SERVICE_ENV } from '../helpers/kubernetes.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const exampleDir = join(root, 'examples', 'multi-node');
const kubernetesDir = join(exampleDir, 'kubernetes');

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

// ---------------------------------------------------------------------------------------------
// What the image does on its own: the Dockerfile's config file, entry point and healthcheck.

const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const IMAGE_CONFIG = /^\s*WHARF_CONFIG=(\S+)/m.exec(dockerfile)?.[1] ?? '';
const ENTRYPOINT = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1] ?? '[]') as string[];

// ---------------------------------------------------------------------------------------------
// A container's view of the world, made on this machine: its files under `root` (a temp dir standing for
// its /), and its environment.

interface Container {
  root: string;
  env: Record<string, string>;
}

function newContainer(t: Test, env: Record<string, string> = {}): Container {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-example-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { root: dir, env: { ...env } };
}

const inside = (c: Container, path: string): string => join(c.root, path);

function putFile(c: Container, path: string, content: string): void {
  mkdirSync(dirname(inside(c, path)), { recursive: true });
  writeFileSync(inside(c, path), content);
}

/** Keys whose value is a path in the container's file system. */
const FILE_KEYS: ReadonlyArray<readonly string[]> = [
  ['storage', 'path'],
  ['storage', 's3', 'secretAccessKeyFile'],
  ['metadata', 'postgres', 'passwordFile'],
  ['cluster', 'secretFile'],
  ['auth', 'htpasswd'],
  ['auth', 'token', 'key'],
  ['auth', 'token', 'trust', 'keys'],
];

function getIn(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), value);
}

function setIn(target: Obj, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = (node[key] = isObj(node[key]) ? node[key] : {});
  node[path.at(-1)!] = value;
}

/** The configuration file as written (no defaults, no environment), for the names it uses. */
const rawConfig = (c: Container, file: string): Obj => obj(parse(readFileSync(inside(c, file), 'utf8')));

interface Checked {
  /** The configuration as the container's process loads it, paths under the container's root. */
  config?: WharfConfig;
  /** The violations verify-config would print, one per problem. */
  violations: readonly string[];
  warnings: string[];
}

/**
 * `wharf verify-config` in the container: the file WHARF_CONFIG names (or the image's), the container's
 * environment, the files the configuration names read where the container has them. The configuration's
 * paths are the container's, so they are given again under its root, as the command line would.
 */
async function verifyIn(c: Container): Promise<Checked> {
  const file = c.env.WHARF_CONFIG ?? IMAGE_CONFIG;
  const raw = rawConfig(c, file);
  const overrides: Obj = {};
  for (const path of FILE_KEYS) {
    const value = c.env[envVarName(path)] ?? getIn(raw, path);
    if (typeof value !== 'string') continue;
    if (!isAbsolute(value)) throw new Error(`${path.join('.')}: ${value} is relative: to the image's working directory, /app, which its user cannot write`);
    setIn(overrides, path, inside(c, value));
  }
  const upstreams = list(raw.upstreams).map((u) => (isObj(u) && typeof u.passwordFile === 'string' ? { ...u, passwordFile: inside(c, u.passwordFile) } : u));
  if (upstreams.length > 0) overrides.upstreams = upstreams;
  const warnings: string[] = [];
  try {
    const config = await checkConfig({ file: inside(c, file), env: c.env, overrides, warn: (w) => warnings.push(w) });
    return { config, violations: [], warnings };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { violations: err.violations, warnings };
  }
}

/** The values of every key ending in Env (passwordEnv, secretAccessKeyEnv): variables the configuration reads. */
function variablesNamed(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => variablesNamed(v, out));
  else if (isObj(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k.endsWith('Env') && typeof v === 'string') out.push(v);
      else variablesNamed(v, out);
    }
  }
  return out;
}

/** `5000`, `30s`, `1m30s` → milliseconds (compose durations). */
function composeDurationMs(text: string): number {
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return ms;
}

const POWERS: Readonly<Record<string, number>> = { '': 0, k: 1, m: 2, g: 3, t: 4 };

/** A Kubernetes memory quantity → bytes: 128Mi, 1Gi (powers of 1024), 256M (of 1000). */
function kubernetesBytes(quantity: string): number {
  const m = /^(\d+)(?:([KMGT])(i?))?$/.exec(quantity);
  if (!m) throw new Error(`not a memory quantity this test reads: ${quantity}`);
  return Number(m[1]) * (m[3] === 'i' ? 1024 : 1000) ** POWERS[(m[2] ?? '').toLowerCase()]!;
}

/** A compose memory size → bytes: 256M, 256m, 256MB all mean MiB (docker's units). */
function composeBytes(size: string): number {
  const m = /^(\d+)([bkmgt]?)b?$/i.exec(size);
  if (!m) throw new Error(`not a memory size this test reads: ${size}`);
  return Number(m[1]) * 1024 ** POWERS[m[2]!.toLowerCase().replace('b', '')]!;
}

/**
 * The peak RSS measured for one node on PostgreSQL and radosgw (64 MiB blobs pushed, then pulled by 8
 * clients at once): what a node's memory request must cover and its limit exceed.
 */
const MEASURED_PEAK = 153 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Docker Compose

interface ComposeService {
  image?: string;
  build?: string | { context?: string };
  environment?: Record<string, string> | string[];
  secrets?: Array<string | { source: string; target?: string }>;
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] };
  ports?: string[];
  networks?: Record<string, { ipv4_address?: string } | null>;
  entrypoint?: string | string[];
  command?: string | string[];
  stop_grace_period?: string;
  deploy?: { resources?: { limits?: { memory?: string } } };
}

interface Compose {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string }>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } }>;
}

const compose = parse(readFileSync(join(exampleDir, 'docker-compose.yml'), 'utf8'), { merge: true }) as Compose;

const environmentOf = (s: ComposeService): Record<string, string> =>
  Array.isArray(s.environment)
    ? Object.fromEntries(s.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))
    : Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));

/** Where each secret of a service is in its container: path → the top-level secret's name. */
const secretMounts = (s: ComposeService): Map<string, string> =>
  new Map((s.secrets ?? []).map((x) => (typeof x === 'string' ? [`/run/secrets/${x}`, x] : [x.target?.startsWith('/') ? x.target : `/run/secrets/${x.target ?? x.source}`, x.source])));

/** `./wharf.yaml:/etc/wharf/wharf.yaml:ro` → a bind mount; `name:/data` → a named volume. */
function volumeMounts(s: ComposeService): Array<{ source: string; target: string; bind: boolean }> {
  return (s.volumes ?? []).map((v) => {
    const [source, target] = v.split(':') as [string, string];
    return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
  });
}

const shellOf = (s: ComposeService): string => [s.entrypoint, s.command].flat().filter((x) => x !== undefined).join(' ');

/** The services run from this repository's Dockerfile: the Wharf nodes. */
const wharfNodes = Object.entries(compose.services).filter(([, s]) => {
  const context = typeof s.build === 'string' ? s.build : s.build?.context;
  return context !== undefined && resolve(exampleDir, context) === resolve(root);
});

/** A node's container: its environment, its secrets (stand-in values), its bind mounts and volumes. */
function composeContainer(t: Test, s: ComposeService): Container {
  const c = newContainer(t, environmentOf(s));
  for (const [path, name] of secretMounts(s)) {
    t.ok(compose.secrets?.[name]?.file, `secret ${name} is defined, from a file`);
    putFile(c, path, `stand-in for ${name}\n`);
  }
  for (const m of volumeMounts(s)) {
    if (m.bind) {
      mkdirSync(dirname(inside(c, m.target)), { recursive: true });
      copyFileSync(resolve(exampleDir, m.source), inside(c, m.target));
    } else {
      t.ok(m.source in (compose.volumes ?? {}), `volume ${m.source} is declared`);
      mkdirSync(inside(c, m.target), { recursive: true });
    }
  }
  return c;
}

t.test('docker-compose.yml: three Wharf nodes, each configuration passes verify-config in its container', async (t) => {
  t.ok(wharfNodes.length >= 3, `three nodes or more: ${wharfNodes.map(([n]) => n).join(', ')}`);
  for (const [name, s] of wharfNodes) {
    const c = composeContainer(t, s);
    const checked = await verifyIn(c);
    t.strictSame(checked.violations, [], `${name}: verify-config finds nothing`);
    t.strictSame(checked.warnings, [], `${name}: and warns of nothing`);
    const config = checked.config;
    if (!config) continue;
    t.ok(config.metadata.postgres, `${name}: metadata in PostgreSQL, shared by the nodes`);
    t.ok(config.storage.s3, `${name}: blobs in the bucket, shared by the nodes`);
    t.ok(obj(config.cluster).secret, `${name}: a cluster, with the secret the nodes share`);
    const advertised = new URL(config.cluster?.advertiseUrl ?? 'http://unset');
    t.equal(advertised.hostname, name, `${name}: the other nodes reach it by its service name`);
    t.equal(Number(advertised.port), parseListen(config.listen).port, `${name}: on the port it listens on`);
    t.strictSame(s.healthcheck?.test, ['CMD', ...ENTRYPOINT, 'healthcheck'], `${name}: the healthcheck is wharf healthcheck, run as the image runs wharf`);
    t.ok(composeDurationMs(s.stop_grace_period ?? '10s') > config.shutdownTimeoutMs, `${name}: stop_grace_period exceeds shutdownTimeoutMs`);
    const limit = s.deploy?.resources?.limits?.memory;
    t.ok(limit !== undefined && composeBytes(limit) >= MEASURED_PEAK, `${name}: a memory limit above the measured peak (${limit})`);
  }
});

t.test('docker-compose.yml: what the nodes point at is provided by the setup', async (t) => {
  const [nodeName, node] = wharfNodes[0]!;
  const c = composeContainer(t, node);
  const raw = rawConfig(c, environmentOf(node).WHARF_CONFIG ?? IMAGE_CONFIG);
  const config = (await verifyIn(c)).config;
  if (!config) return t.fail(`${nodeName}: its configuration does not load`);
  const mounts = secretMounts(node);
  const names = new Set(Object.keys(compose.services));
  for (const [n, s] of Object.entries(compose.services)) {
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) t.ok(names.has(d), `${n} depends on ${d}, a service`);
  }
  const dependsOn = obj(node.depends_on);

  // PostgreSQL: the service the URL names, with the user, the database and the password the node uses.
  const pg = config.metadata.postgres!;
  const url = new URL(pg.url);
  const postgres = compose.services[url.hostname];
  if (!postgres) return t.fail(`metadata.postgres.url names ${url.hostname}, which is no service`);
  t.match(postgres.image, /^postgres:/, 'a PostgreSQL image');
  t.equal(url.port || '5432', '5432', 'on the port PostgreSQL listens on');
  const pgEnv = environmentOf(postgres);
  t.equal(pgEnv.POSTGRES_USER, decodeURIComponent(url.username), 'the user the URL names is the one the server creates');
  t.equal(pgEnv.POSTGRES_DB, url.pathname.slice(1), 'and so is the database');
  const pgSecret = mounts.get(str(getIn(raw, ['metadata', 'postgres', 'passwordFile'])) ?? '');
  t.ok(pgSecret, 'the node reads the database password from a secret');
  t.equal(secretMounts(postgres).get(pgEnv.POSTGRES_PASSWORD_FILE ?? ''), pgSecret, 'the server sets its password from the same secret');
  t.equal(obj(dependsOn[url.hostname]).condition, 'service_healthy', 'nodes start once PostgreSQL is ready');

  // S3: the server the endpoint names, with the key the node signs with, and the bucket made for it.
  const s3 = config.storage.s3!;
  const endpoint = new URL(s3.endpoint!);
  const minio = compose.services[endpoint.hostname];
  if (!minio) return t.fail(`storage.s3.endpoint names ${endpoint.hostname}, which is no service`);
  t.match(shellOf(minio), /\bminio server\b/, 'the endpoint is a MinIO server');
  t.notMatch(shellOf(minio), /--address/, 'on its default S3 port');
  t.equal(endpoint.port, '9000', 'which the endpoint names');
  t.ok(s3.forcePathStyle, 'addressed by path: no wildcard DNS for bucket names between containers');
  t.equal(environmentOf(minio).MINIO_ROOT_USER, s3.accessKeyId, 'the node signs with the user MinIO has');
  const s3Secret = mounts.get(str(getIn(raw, ['storage', 's3', 'secretAccessKeyFile'])) ?? '');
  t.ok(s3Secret, 'the node reads the secret key from a secret');
  const minioSecretFile = /\$\$\(cat (\S+)\)/.exec(shellOf(minio))?.[1];
  t.equal(secretMounts(minio).get(minioSecretFile ?? ''), s3Secret, "MinIO's password is the same secret");
  const maker = Object.entries(compose.services).find(([, s]) => /\bmc mb\b/.test(shellOf(s)));
  if (!maker) return t.fail('no service makes the bucket');
  const [makerName, makerService] = maker;
  const script = shellOf(makerService);
  const alias = /mc alias set (\S+) (\S+) (\S+) "\$\$\(cat (\S+)\)"/.exec(script);
  t.ok(alias, 'the bucket maker signs in to an S3 server');
  t.equal(alias?.[2], s3.endpoint, 'the one the nodes use');
  t.equal(alias?.[3], s3.accessKeyId, 'as the same user');
  t.equal(secretMounts(makerService).get(alias?.[4] ?? ''), s3Secret, 'with the same secret');
  t.match(script, new RegExp(`mc mb --ignore-existing ${alias?.[1]}/${s3.bucket}\\b`), `it makes the bucket ${s3.bucket}, if missing`);
  t.equal(obj(dependsOn[makerName]).condition, 'service_completed_successfully', 'nodes start once the bucket exists');

  // The cluster: every node shows the others the same secret.
  const clusterFile = str(getIn(raw, ['cluster', 'secretFile'])) ?? '';
  t.strictSame(new Set(wharfNodes.map(([, s]) => secretMounts(s).get(clusterFile))).size, 1, 'every node reads the cluster secret from the same secret');

  // Secrets: each is a file README.md says how to make; none is committed.
  const made = /for s in ([^;]+); do openssl rand -hex \d+ > secrets\/\$s; done/.exec(readFileSync(join(exampleDir, 'README.md'), 'utf8'));
  t.ok(made, 'README.md makes the secret files');
  for (const [name, secret] of Object.entries(compose.secrets ?? {})) {
    t.equal(secret.file, `./secrets/${name}`, `secret ${name} is the file secrets/${name}`);
    t.ok(made?.[1]!.split(/\s+/).includes(name), `which README.md makes`);
  }
  t.match(readFileSync(join(exampleDir, '.gitignore'), 'utf8'), /^secrets\/$/m, 'secrets/ is not committed');
});

/** nginx.conf → its `upstream` blocks (servers) and the directives of its `server` block. */
function readNginx(text: string): { text: string; upstreams: Map<string, string[]>; directives: Map<string, string[]> } {
  const lines = text.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l !== '');
  const upstreams = new Map<string, string[]>();
  const directives = new Map<string, string[]>();
  let upstream: string[] | undefined;
  for (const line of lines) {
    const open = /^upstream\s+(\S+)\s*\{$/.exec(line);
    if (open) upstreams.set(open[1]!, (upstream = []));
    else if (line === '}') upstream = undefined;
    else if (upstream && line.startsWith('server ')) upstream.push(line.split(/\s+/)[1]!.replace(/;$/, ''));
    else {
      const d = /^([a-z_]+)\s+(.*?);$/.exec(line);
      if (d) directives.set(d[1]!, [...(directives.get(d[1]!) ?? []), d[2]!]);
    }
  }
  return { text: lines.join('\n'), upstreams, directives };
}

t.test('docker-compose.yml: nginx spreads clients over every node, streaming, and the nodes trust it', async (t) => {
  const lb = Object.entries(compose.services).find(([, s]) => volumeMounts(s).some((m) => m.target === '/etc/nginx/nginx.conf'));
  if (!lb) return t.fail('no nginx service with its nginx.conf');
  const [lbName, nginx] = lb;
  const conf = readNginx(readFileSync(resolve(exampleDir, volumeMounts(nginx).find((m) => m.target === '/etc/nginx/nginx.conf')!.source), 'utf8'));
  const configs = await Promise.all(wharfNodes.map(async ([name, s]) => [name, (await verifyIn(composeContainer(t, s))).config] as const));
  const proxied = /^http:\/\/([^/;]+)/.exec(conf.directives.get('proxy_pass')?.[0] ?? '')?.[1] ?? '';
  t.strictSame(
    [...(conf.upstreams.get(proxied) ?? [])].sort(),
    configs.map(([name, config]) => `${name}:${config ? parseListen(config.listen).port : '?'}`).sort(),
    'proxy_pass sends to every node, on the port its configuration listens on',
  );
  const listen = conf.directives.get('listen')?.[0];
  t.ok(nginx.ports?.includes(`${listen}:${listen}`), `the port nginx listens on (${listen}) is the one published`);
  t.strictSame(conf.directives.get('client_max_body_size'), ['0'], 'layers of any size');
  t.strictSame(conf.directives.get('proxy_request_buffering'), ['off'], 'pushes streamed to the nodes, not spooled');
  t.strictSame(conf.directives.get('proxy_buffering'), ['off'], 'pulls streamed to the clients');
  t.ok(conf.directives.get('proxy_set_header')?.includes('X-Forwarded-For $proxy_add_x_forwarded_for'), 'nginx names the client');
  t.match(conf.text, /location \/internal\/ \{\s*return 404;\s*\}/, 'and keeps the endpoint between nodes to the nodes');
  const address = nginx.networks?.default?.ipv4_address;
  const subnet = compose.networks?.default?.ipam?.config?.[0]?.subnet ?? '';
  t.ok(address && subnet.startsWith(address.split('.').slice(0, 3).join('.') + '.'), `${lbName} has a fixed address (${address}) in the network's subnet (${subnet})`);
  for (const [name, config] of configs) t.ok(config?.http.trustProxy.includes(address ?? ''), `${name} believes the X-Forwarded-For of ${lbName} only`);
  for (const [name] of wharfNodes) t.notOk(compose.services[name]!.ports, `${name} is reached through ${lbName} only`);
});

t.test('the checks catch a node whose secret is missing', async (t) => {
  const [, node] = wharfNodes[0]!;
  const c = composeContainer(t, { ...node, secrets: (node.secrets ?? []).filter((x) => x !== 's3_secret_key') });
  const { violations } = await verifyIn(c);
  t.match(violations.join('\n'), /storage\.s3\.secretAccessKeyFile: cannot read .*s3_secret_key: ENOENT/);
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

const manifests: K8sObject[] = readdirSync(kubernetesDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .flatMap((f) => parseAllDocuments(readFileSync(join(kubernetesDir, f), 'utf8')).map((d) => d.toJS() as K8sObject))
  .filter((o) => o !== null);

const find = (kind: string, name: string): K8sObject | undefined => manifests.find((o) => o.kind === kind && o.metadata.name === name);
const ofKind = (kind: string): K8sObject[] => manifests.filter((o) => o.kind === kind);

/** The value of a Secret's or ConfigMap's key as the pod sees it (a Secret's data is base64). */
function keyValue(kind: 'Secret' | 'ConfigMap', name: string, key: string): string | undefined {
  const o = find(kind, name);
  const text = str(obj(o?.stringData)[key]) ?? str(obj(o?.data)[key]);
  if (text !== undefined) return text;
  const encoded = kind === 'Secret' ? str(obj(o?.data)[key]) : undefined;
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString();
}

const keysOf = (kind: 'Secret' | 'ConfigMap', name: string): string[] => {
  const o = find(kind, name);
  return [...Object.keys(obj(o?.data)), ...Object.keys(obj(o?.stringData))];
};

/** The variables Kubernetes sets for each Service in a pod's namespace (docker-links style), unless enableServiceLinks is false. */
function serviceLinks(): Record<string, string> {
  const out: Record<string, string> = {};
  ofKind('Service').forEach((svc, i) => {
    const n = svc.metadata.name.toUpperCase().replace(/-/g, '_');
    const host = `10.96.0.${12 + i}`;
    const ports = list(obj(svc.spec).ports).map((p) => obj(p));
    ports.forEach((p, j) => {
      const proto = str(p.protocol) ?? 'TCP';
      const base = `${n}_PORT_${String(p.port)}_${proto}`;
      Object.assign(out, { [base]: `${proto.toLowerCase()}://${host}:${p.port}`, [`${base}_ADDR`]: host, [`${base}_PORT`]: String(p.port), [`${base}_PROTO`]: proto.toLowerCase() });
      if (j === 0) Object.assign(out, { [`${n}_PORT`]: `${proto.toLowerCase()}://${host}:${p.port}`, [`${n}_SERVICE_HOST`]: host, [`${n}_SERVICE_PORT`]: String(p.port) });
      if (typeof p.name === 'string') out[`${n}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.port);
    });
  });
  return out;
}

const deployment = ofKind('Deployment')[0]!;
const podSpec = obj(obj(obj(deployment?.spec).template).spec);
const podLabels = obj(obj(obj(obj(deployment?.spec).template).metadata).labels);
const container = obj(list(podSpec.containers)[0]);

/** What the downward API gives a pod, for variables set from its fields. */
const FIELD_VALUES: Readonly<Record<string, string>> = { 'status.podIP': '10.244.1.7', 'metadata.name': 'wharf-5d8f7c-x2x9q', 'metadata.namespace': 'default' };

/** Builds the pod's container: environment (Secret and ConfigMap keys resolved), mounted files and volumes. */
function podContainer(t: Test, spec: Obj, ctr: Obj): Container {
  const c = newContainer(t, spec.enableServiceLinks === false ? {} : serviceLinks());
  for (const e of list(ctr.env).map(obj)) {
    const name = str(e.name)!;
    const from = obj(e.valueFrom);
    if (typeof e.value === 'string') c.env[name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => c.env[v] ?? m);
    else if (isObj(from.secretKeyRef) || isObj(from.configMapKeyRef)) {
      const [kind, ref] = isObj(from.secretKeyRef) ? (['Secret', obj(from.secretKeyRef)] as const) : (['ConfigMap', obj(from.configMapKeyRef)] as const);
      const value = keyValue(kind, str(ref.name)!, str(ref.key)!);
      t.ok(value !== undefined, `${name}: the ${kind} ${ref.name} has the key ${ref.key}`);
      c.env[name] = value ?? '';
    } else if (isObj(from.fieldRef)) c.env[name] = FIELD_VALUES[str(obj(from.fieldRef).fieldPath) ?? ''] ?? 'stand-in';
    else t.fail(`${name}: a kind of value this test does not know`);
  }
  const volumes = new Map(list(spec.volumes).map((v) => [str(obj(v).name)!, obj(v)]));
  for (const m of list(ctr.volumeMounts).map(obj)) {
    const volume = volumes.get(str(m.name)!);
    const at = str(m.mountPath)!;
    if (!volume) {
      t.fail(`volume ${m.name} mounted at ${at} is not one of the pod's`);
      continue;
    }
    const source = isObj(volume.secret) ? (['Secret', str(volume.secret.secretName)!, volume.secret] as const) : isObj(volume.configMap) ? (['ConfigMap', str(volume.configMap.name)!, volume.configMap] as const) : undefined;
    if (!source) {
      mkdirSync(inside(c, at), { recursive: true }); // emptyDir and the like: a writable directory
      continue;
    }
    const [kind, name, def] = source;
    t.ok(find(kind, name), `volume ${m.name}: the ${kind} ${name} is in the manifests`);
    const items = isObj(def) && Array.isArray(def.items) ? def.items.map(obj).map((i) => [str(i.key)!, str(i.path)!] as const) : keysOf(kind, name).map((k) => [k, k] as const);
    for (const [key, path] of items) {
      const value = keyValue(kind, name, key);
      t.ok(value !== undefined, `volume ${m.name}: the ${kind} ${name} has the key ${key}`);
      if (typeof m.subPath === 'string' && m.subPath !== path) continue;
      putFile(c, typeof m.subPath === 'string' ? at : join(at, path), value ?? '');
    }
  }
  return c;
}

/** A container port by number or name. */
const portOf = (ctr: Obj, port: unknown): number | undefined =>
  typeof port === 'number' ? port : (list(ctr.ports).map(obj).find((p) => p.name === port)?.containerPort as number | undefined);

t.test('the service links made here include what Kubernetes sets for a Service named wharf', async (t) => {
  const links = serviceLinks();
  for (const name of Object.keys(KUBERNETES_SERVICE_ENV)) t.ok(name in links, name);
  t.ok('WHARF_SERVICE_PORT_HTTP' in links, 'and the variable of its named port');
});

t.test('kubernetes/: the Deployment runs several pods, whose configuration passes verify-config', async (t) => {
  t.ok(deployment, 'a Deployment');
  t.ok(Number(obj(deployment.spec).replicas) >= 3, 'of several replicas');
  const c = podContainer(t, podSpec, container);
  const checked = await verifyIn(c);
  t.strictSame(checked.violations, [], 'verify-config finds nothing');
  t.strictSame(checked.warnings, [], 'and warns of nothing (no WHARF_* variable that is no key)');
  const config = checked.config;
  if (!config) return;
  t.ok(config.metadata.postgres, 'metadata in PostgreSQL, shared by the pods');
  t.ok(config.storage.s3, 'blobs in the bucket, shared by the pods');
  const raw = rawConfig(c, c.env.WHARF_CONFIG ?? IMAGE_CONFIG);
  const named = variablesNamed(raw);
  t.ok(named.length > 0, 'the configuration reads secrets from variables');
  for (const v of named) t.ok(list(container.env).some((e) => obj(e).name === v), `${v}, which the configuration names, is set by the Deployment`);
  // What the Secret gives reaches the configuration: the stand-in values as loaded.
  const s3 = obj(config.storage.s3);
  t.ok(s3.accessKeyId && s3.secretAccessKey, 'the S3 key and its secret both reach storage.s3');
  t.ok(obj(config.metadata.postgres).password, 'the database password reaches metadata.postgres');
  t.ok(obj(config.cluster).secret, 'the cluster secret reaches cluster');
  const advertised = new URL(config.cluster?.advertiseUrl ?? 'http://unset');
  t.equal(advertised.hostname, FIELD_VALUES['status.podIP'], "the other pods reach each pod at its own address (the downward API's)");
  t.equal(Number(advertised.port), parseListen(config.listen).port, 'on the port it listens on');

  const port = parseListen(config.listen).port;
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const get = obj(obj(container[probe]).httpGet);
    if (probe === 'startupProbe' && !isObj(container[probe])) continue;
    t.equal(get.path, '/healthz', `${probe} asks /healthz`);
    t.equal(portOf(container, get.port), port, `${probe} on the port the configuration listens on`);
  }
  const grace = Number(podSpec.terminationGracePeriodSeconds ?? 30) * 1000;
  t.ok(grace > config.shutdownTimeoutMs, `terminationGracePeriodSeconds (${grace / 1000}) exceeds shutdownTimeoutMs`);
  const resources = obj(container.resources);
  const request = str(obj(resources.requests).memory);
  const limit = str(obj(resources.limits).memory);
  t.ok(request !== undefined && kubernetesBytes(request) >= MEASURED_PEAK, `the memory request (${request}) covers the measured peak`);
  t.ok(limit !== undefined && request !== undefined && kubernetesBytes(limit) >= kubernetesBytes(request), `the memory limit (${limit}) is at least the request`);
});

t.test('kubernetes/: the Service, the budget and the Deployment agree on the pods and the port', async (t) => {
  const labels = obj(obj(obj(deployment.spec).selector).matchLabels);
  const selects = (selector: Obj): boolean => Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => podLabels[k] === v);
  t.ok(selects(labels), "the Deployment's selector matches its pods");
  const config = (await verifyIn(podContainer(t, podSpec, container))).config;
  const port = config ? parseListen(config.listen).port : undefined;
  const services = ofKind('Service');
  t.ok(services.length > 0, 'a Service');
  for (const svc of services) {
    t.ok(selects(obj(obj(svc.spec).selector)), `Service ${svc.metadata.name} selects the pods`);
    for (const p of list(obj(svc.spec).ports).map(obj)) t.equal(portOf(container, p.targetPort ?? p.port), port, `Service ${svc.metadata.name} port ${p.port} reaches the port Wharf listens on`);
  }
  for (const pdb of ofKind('PodDisruptionBudget')) {
    t.ok(selects(obj(obj(obj(pdb.spec).selector).matchLabels)), `${pdb.metadata.name} covers the pods`);
    t.ok(Number(obj(pdb.spec).minAvailable) < Number(obj(deployment.spec).replicas), 'and leaves room for a drain');
  }
  const secretNames = new Set(ofKind('Secret').map((s) => s.metadata.name));
  t.ok(secretNames.size > 0, 'the credentials are in a Secret');
});

t.test('the checks catch a Deployment that leaves out a variable the configuration needs', async (t) => {
  const env = list(container.env).filter((e) => obj(e).name !== 'WHARF_STORAGE_S3_ACCESS_KEY_ID');
  const { violations } = await verifyIn(podContainer(t, podSpec, { ...container, env }));
  t.match(violations.join('\n'), /storage\.s3\.secretAccessKeyFile: give accessKeyId too/);
  const links = await verifyIn(podContainer(t, { ...podSpec, enableServiceLinks: true }, container));
  t.match(links.warnings.join('\n'), /ignoring .*WHARF_SERVICE_HOST/, 'and the service links a Service named wharf would add');
});
