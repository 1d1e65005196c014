// What the example setups under examples/ need from a test: a container's view of the world (its files under
// a temp dir standing for its /, its environment), `wharf verify-config` run in it as the image would, and a set
// of Kubernetes manifests read into pods (Secrets and ConfigMaps resolved, volumes mounted, service links set).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import { checkConfig } from '../../src/cli/preflight.js';
import { ConfigError, envVarName } from '../../src/config/load.js';
import type { WharfConfig } from '../../src/config/schema.js';

export const root = fileURLToPath(new URL('../../', import.meta.url));

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const obj = (v: unknown): Obj => (isObj(v) ? v : {});
export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

// ---------------------------------------------------------------------------------------------
// What the image does on its own: the Dockerfile's config file, entry point and healthcheck.

export const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
export const IMAGE_CONFIG = /^\s*WHARF_CONFIG=(\S+)/m.exec(dockerfile)?.[1] ?? '';
export const ENTRYPOINT = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1] ?? '[]') as string[];

// ---------------------------------------------------------------------------------------------
// A container's view of the world, made on this machine: its files under `root` (a temp dir standing for
// its /), and its environment.

export interface Container {
  root: string;
  env: Record<string, string>;
}

export function newContainer(t: Test, env: Record<string, string> = {}): Container {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-example-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { root: dir, env: { ...env } };
}

export const inside = (c: Container, path: string): string => join(c.root, path);

export function putFile(c: Container, path: string, content: string): void {
  mkdirSync(dirname(inside(c, path)), { recursive: true });
  writeFileSync(inside(c, path), content);
}

/** Keys whose value is a path in the container's file system. */
export const FILE_KEYS: ReadonlyArray<readonly string[]> = [
  ['storage', 'path'],
  ['storage', 's3', 'secretAccessKeyFile'],
  ['metadata', 'postgres', 'passwordFile'],
  ['cluster', 'secretFile'],
  ['auth', 'htpasswd'],
  ['auth', 'token', 'key'],
  ['auth', 'token', 'trust', 'keys'],
];

export function getIn(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), value);
}

export function setIn(target: Obj, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) node = (node[key] = isObj(node[key]) ? node[key] : {});
  node[path.at(-1)!] = value;
}

/** The configuration file as written (no defaults, no environment), for the names it uses. */
export const rawConfig = (c: Container, file: string): Obj => obj(parse(readFileSync(inside(c, file), 'utf8')));

export interface Checked {
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
export async function verifyIn(c: Container): Promise<Checked> {
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
export function variablesNamed(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => variablesNamed(v, out));
  else if (isObj(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k.endsWith('Env') && typeof v === 'string') out.push(v);
      else variablesNamed(v, out);
    }
  }
  return out;
}

export const POWERS: Readonly<Record<string, number>> = { '': 0, k: 1, m: 2, g: 3, t: 4 };

/** A Kubernetes memory quantity → bytes: 128Mi, 1Gi (powers of 1024), 256M (of 1000). */
export function kubernetesBytes(quantity: string): number {
  const m = /^(\d+)(?:([KMGT])(i?))?$/.exec(quantity);
  if (!m) throw new Error(`not a memory quantity this test reads: ${quantity}`);
  return Number(m[1]) * (m[3] === 'i' ? 1024 : 1000) ** POWERS[(m[2] ?? '').toLowerCase()]!;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** What the downward API gives a pod, for variables set from its fields. */
export const FIELD_VALUES: Readonly<Record<string, string>> = { 'status.podIP': '10.244.1.7', 'metadata.name': 'wharf-5d8f7c-x2x9q', 'metadata.namespace': 'default' };

/** The manifests of one directory (every .yaml/.yml, every document), and the pod of its Deployment. */
export class KubernetesSet {
  readonly manifests: K8sObject[];
  readonly deployment: K8sObject;
  readonly podSpec: Obj;
  readonly podLabels: Obj;
  readonly container: Obj;

  constructor(dir: string) {
    this.manifests = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as K8sObject))
      .filter((o) => o !== null);
    this.deployment = this.ofKind('Deployment')[0]!;
    const template = obj(obj(this.deployment?.spec).template);
    this.podSpec = obj(template.spec);
    this.podLabels = obj(obj(template.metadata).labels);
    this.container = obj(list(this.podSpec.containers)[0]);
  }

  find(kind: string, name: string): K8sObject | undefined {
    return this.manifests.find((o) => o.kind === kind && o.metadata.name === name);
  }

  ofKind(kind: string): K8sObject[] {
    return this.manifests.filter((o) => o.kind === kind);
  }

  /** The value of a Secret's or ConfigMap's key as the pod sees it (a Secret's data is base64). */
  keyValue(kind: 'Secret' | 'ConfigMap', name: string, key: string): string | undefined {
    const o = this.find(kind, name);
    const text = str(obj(o?.stringData)[key]) ?? (kind === 'ConfigMap' ? str(obj(o?.data)[key]) : undefined);
    if (text !== undefined) return text;
    const encoded = kind === 'Secret' ? str(obj(o?.data)[key]) : undefined;
    return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString();
  }

  keysOf(kind: 'Secret' | 'ConfigMap', name: string): string[] {
    const o = this.find(kind, name);
    return [...Object.keys(obj(o?.data)), ...Object.keys(obj(o?.stringData))];
  }

  /** The variables Kubernetes sets for each Service in a pod's namespace (docker-links style), unless enableServiceLinks is false. */
  serviceLinks(): Record<string, string> {
    const out: Record<string, string> = {};
    this.ofKind('Service').forEach((svc, i) => {
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

  /** Builds the pod's container: environment (Secret and ConfigMap keys resolved), mounted files and volumes. */
  podContainer(t: Test, spec: Obj = this.podSpec, ctr: Obj = this.container): Container {
    const c = newContainer(t, spec.enableServiceLinks === false ? {} : this.serviceLinks());
    for (const e of list(ctr.env).map(obj)) {
      const name = str(e.name)!;
      const from = obj(e.valueFrom);
      if (typeof e.value === 'string') c.env[name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => c.env[v] ?? m);
      else if (isObj(from.secretKeyRef) || isObj(from.configMapKeyRef)) {
        const [kind, ref] = isObj(from.secretKeyRef) ? (['Secret', obj(from.secretKeyRef)] as const) : (['ConfigMap', obj(from.configMapKeyRef)] as const);
        const value = this.keyValue(kind, str(ref.name)!, str(ref.key)!);
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
        mkdirSync(inside(c, at), { recursive: true }); // emptyDir, a PersistentVolumeClaim and the like: a writable directory
        continue;
      }
      const [kind, name, def] = source;
      t.ok(this.find(kind, name), `volume ${m.name}: the ${kind} ${name} is in the manifests`);
      const items = isObj(def) && Array.isArray(def.items) ? def.items.map(obj).map((i) => [str(i.key)!, str(i.path)!] as const) : this.keysOf(kind, name).map((k) => [k, k] as const);
      for (const [key, path] of items) {
        const value = this.keyValue(kind, name, key);
        t.ok(value !== undefined, `volume ${m.name}: the ${kind} ${name} has the key ${key}`);
        if (typeof m.subPath === 'string' && m.subPath !== path) continue;
        putFile(c, typeof m.subPath === 'string' ? at : join(at, path), value ?? '');
      }
    }
    return c;
  }
}

/** A container port by number or name. */
export const portOf = (ctr: Obj, port: unknown): number | undefined =>
  typeof port === 'number' ? port : (list(ctr.ports).map(obj).find((p) => p.name === port)?.containerPort as number | undefined);
