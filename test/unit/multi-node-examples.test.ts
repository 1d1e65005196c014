// The multi-node examples (examples/multi-node/: docker-compose.yml with nginx.conf and wharf.yaml, and the
// Kubernetes manifests in kubernetes/) start, as far as this machine can tell without running them: every
// Wharf configuration in them is loaded and checked exactly as `wharf verify-config` would in the container,
// with the environment, secrets and volumes the setup gives that container (laid out under a temp dir that
// stands for its file system); and the names and ports the files share agree: the Secret keys and services
// they refer to exist, the variables the configuration names are set, the load balancer sends to the port the
// nodes listen on, the database and the bucket the nodes use are the ones the setup provides.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { parseListen } from '../../src/config/listen.js';
import { KUBERNETES_SERVICE_ENV } from '../helpers/kubernetes.js';
import {
  ENTRYPOINT, FIELD_VALUES, IMAGE_CONFIG, KubernetesSet, POWERS, getIn, inside, isObj, kubernetesBytes, list, newContainer, obj, portOf, putFile, rawConfig, root, str,
  variablesNamed, verifyIn, type Container, type Obj,
} from '../helpers/example-container.js';

const exampleDir = join(root, 'examples', 'multi-node');
const kube = new KubernetesSet(join(exampleDir, 'kubernetes'));
const { deployment, podSpec, podLabels, container } = kube;
const ofKind = (kind: string) => kube.ofKind(kind);
const podContainer = (t: Test, spec: Obj, ctr: Obj): Container => kube.podContainer(t, spec, ctr);
const serviceLinks = (): Record<string, string> => kube.serviceLinks();

/** `5000`, `30s`, `1m30s` → milliseconds (compose durations). */
function composeDurationMs(text: string): number {
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return ms;
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
    t.equal(get.path, probe === 'readinessProbe' ? '/readyz' : '/healthz', `${probe} asks ${probe === 'readinessProbe' ? '/readyz (the database and the bucket answer)' : '/healthz (the process lives)'}`);
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
