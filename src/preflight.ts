// What `serve` needs of the world before it creates anything: the data directory can be created and
// written, and the files the configuration names (auth.htpasswd, the token keys) load. `serve` and
// `verify-config` run these same checks, so a configuration that passes verify-config starts, and
// one that fails says why, all at once; `serve` creates nothing (data directory, metadata.db, key
// file) until they pass. Each failure is one violation, prefixed by the key it is about.
import { constants, type Stats } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { WharfConfig } from './config/schema.js';
import { loadOrCreateSigningKey, loadVerificationKeys } from './auth/jwt.js';
import { UserDirectory } from './auth/users.js';
import { repositoryGlobProblem, type GlobContext } from './auth/repository-globs.js';
import { Router, type UpstreamRoute } from './registry/router.js';

/** The configuration's routing, as repository globs are judged against it (policies, token scopes). */
export function globContext(upstreams: readonly UpstreamRoute[], localNamespaces: readonly string[]): GlobContext {
  const router = new Router(upstreams, localNamespaces);
  return { route: (name, ns) => router.route(name, ns), upstreams };
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);
const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Every policy glob that names no canonical repository (auth/repository-globs.ts): such a rule covers
 * nothing, and the built-in rules then open what it meant to restrict. A check for loadConfig
 * (`checks`), so it is listed with the schema's and the cross-field violations; it looks at the
 * configuration as loaded and judges the globs only when the routing keys have their shape (the
 * schema reports them otherwise).
 */
export function policyGlobViolations(config: unknown): string[] {
  if (!isPlain(config) || (config.upstreams !== undefined && !Array.isArray(config.upstreams))) return [];
  const upstreams = listOf(config.upstreams);
  const routable = upstreams.every((u) => isPlain(u) && typeof u.name === 'string' && typeof u.registry === 'string' && (u.prefix === undefined || typeof u.prefix === 'string'));
  const namespaces = isPlain(config.local) ? config.local.namespaces ?? [] : [];
  if (!routable || !Array.isArray(namespaces) || !namespaces.every((n) => typeof n === 'string')) return [];
  const routes = (upstreams as Plain[]).map((u): UpstreamRoute => ({
    name: u.name as string,
    registry: u.registry as string,
    prefix: u.prefix as string | undefined,
    default: u.default === true,
    username: typeof u.username === 'string' ? u.username : undefined,
  }));
  const ctx = globContext(routes, namespaces as string[]);
  const out: string[] = [];
  listOf(isPlain(config.auth) ? config.auth.policies : undefined).forEach((rule, i) =>
    listOf(isPlain(rule) ? rule.repositories : undefined).forEach((glob, j) => {
      const problem = typeof glob === 'string' ? repositoryGlobProblem(glob, ctx) : undefined;
      if (problem !== undefined) out.push(`auth.policies.${i}.repositories.${j}: ${problem}`);
    }),
  );
  return out;
}

export async function preflight(config: WharfConfig): Promise<string[]> {
  const out: string[] = [];
  const check = async (key: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      out.push(`${key}: ${(err as Error).message}`);
    }
  };

  await check('storage.path', () => writableDirectory(config.storage.path, 'the data directory'));
  const auth = config.auth;
  if (auth !== undefined) {
    // The same loader serve uses: the file is read and every line checked, inline users too.
    await check(auth.htpasswd === undefined ? 'auth.users' : 'auth.htpasswd', () =>
      UserDirectory.open({ htpasswd: auth.htpasswd, users: auth.users, groups: auth.groups }),
    );
    const keyFile = auth.token.key ?? join(config.storage.path, 'auth', 'token-key.pem');
    await check('auth.token.key', async () => {
      // An existing key is loaded as serve loads it (algorithm checked); a missing one is generated
      // on the first start, so its directory must be creatable.
      if ((await statOrUndefined(keyFile)) !== undefined) await loadOrCreateSigningKey(keyFile, auth.token.algorithm);
      else await writableDirectory(dirname(keyFile), `the directory of the token signing key ${keyFile}`);
    });
    const trust = auth.token.trust;
    if (trust !== undefined) await check('auth.token.trust.keys', async () => loadVerificationKeys(trust.keys));
  }
  return out;
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    // ENOTDIR: a component of the path is a file; the caller explains.
    if (code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Throws unless `path` is a writable directory, or can be created as one: its nearest existing
 * ancestor is a directory we may write to.
 */
export async function writableDirectory(path: string, what: string): Promise<void> {
  const absolute = resolve(path);
  for (let p = absolute; ; p = dirname(p)) {
    const st = await statOrUndefined(p);
    if (st !== undefined) {
      if (!st.isDirectory()) {
        throw new Error(
          p === absolute ? `${what} ${path} is not a directory` : `cannot create ${what} ${path}: ${p} is not a directory`,
        );
      }
      try {
        await access(p, constants.W_OK | constants.X_OK);
      } catch (err) {
        const why = (err as NodeJS.ErrnoException).code === 'EROFS' ? 'is on a read-only file system' : 'is not writable';
        throw new Error(p === absolute ? `${what} ${path} ${why}` : `cannot create ${what} ${path}: ${p} ${why}`);
      }
      return;
    }
    if (dirname(p) === p) throw new Error(`cannot create ${what} ${path}: no existing parent directory`);
  }
}
