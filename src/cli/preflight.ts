// What `serve` needs of the world before it creates anything: the listen host resolves to an address
// of this machine, the data directory can be created and written (an existing store in every part
// Wharf writes), and the files the configuration names (auth.htpasswd, the token keys) load. `serve`
// and `verify-config` run these same checks (checkConfig), so a configuration that passes
// verify-config starts, and one that fails says why, all at once; `serve` creates nothing (data
// directory, metadata.db, key file) until they pass. Each failure is one violation, prefixed once by
// the key it is about and followed by where that key was written.
import { constants, type Stats } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigKeyError } from '../config/key-error.js';
import { parseListen } from '../config/listen.js';
import { ConfigError, loadConfigWithOrigin, type LoadOptions } from '../config/load.js';
import type { WharfConfig } from '../config/schema.js';
import { readKeyPair } from '../http/tls-server.js';
import { listenHostProblem } from '../http/listen-socket.js';
import { changeSignalPath, isSessionId, metadataPath, uploadsDir } from '../storage/paths.js';
import { repositoryGlobProblem, type GlobContext } from '../auth/repository-globs.js';
import { Router, type UpstreamRoute } from '../registry/router.js';
import { isPlain, type Plain } from '../config/plain.js';
import { warmImageProblems } from '../warm/warm-config.js';

/** The configuration's routing, as repository globs are judged against it (policies, token scopes). */
export function globContext(upstreams: readonly UpstreamRoute[], localNamespaces: readonly string[]): GlobContext {
  const router = new Router(upstreams, localNamespaces);
  return { route: (name, ns) => router.route(name, ns), upstreams };
}

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
  const ctx = globContext(routes, namespaces);
  const out: string[] = [];
  listOf(isPlain(config.auth) ? config.auth.policies : undefined).forEach((rule, i) =>
    listOf(isPlain(rule) ? rule.repositories : undefined).forEach((glob, j) => {
      const problem = typeof glob === 'string' ? repositoryGlobProblem(glob, ctx) : undefined;
      if (problem !== undefined) out.push(`auth.policies.${i}.repositories.${j}: ${problem}`);
    }),
  );
  return out;
}

/** One thing `serve` would trip on: the key it is about, apart from the message (it is prefixed once). */
interface Problem {
  key: string;
  message: string;
}

/**
 * What verify-config and serve both run, in full: the configuration loaded and validated (schema,
 * rules between keys, policy globs), then preflight; every problem under its key, with where the key
 * was written. Throws a ConfigError listing them; serve runs this before it creates or binds anything.
 */
export async function checkConfig(opts: Omit<LoadOptions, 'checks'>): Promise<WharfConfig> {
  const { config, origin } = loadConfigWithOrigin({ ...opts, checks: policyGlobViolations });
  const problems = await preflight(config);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${p.key}: ${p.message}${origin(p.key)}`), opts.file);
  return config;
}

export async function preflight(config: WharfConfig): Promise<Problem[]> {
  const out: Problem[] = [];
  // `key` is the key a failure is about, unless the error names its own (ConfigKeyError: an inline
  // user's entry, say); the message never repeats it.
  const check = async (key: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof ConfigKeyError) out.push({ key: err.key, message: err.message });
      else out.push({ key, message: (err as Error).message });
    }
  };

  // The host resolves and is an address of this machine; its port is serve's to take (a running
  // server may hold it while verify-config runs).
  await check('listen', async () => {
    const problem = await listenHostProblem(parseListen(config.listen).host);
    if (problem !== undefined) throw new Error(problem);
  });
  await check('storage.path', async () => {
    await writableDirectory(config.storage.path, 'the data directory');
    await writableStore(config.storage.path);
  });
  for (const message of warmImageProblems(config)) out.push({ key: 'warm.images', message });
  const tls = config.tls;
  if (tls !== undefined) {
    // Read and paired as the server reads them: a missing file, a key of another certificate.
    await check('tls.cert', async () => {
      try {
        readKeyPair(tls);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') throw new Error(`cannot read ${e.path ?? 'the file'}: ${e.code}`);
        if (/key values mismatch/.test(e.message)) throw new Error(`the key in ${tls.key} does not belong to the certificate in ${tls.cert}`);
        if (/no start line|bad decrypt|DECODER/i.test(e.message)) throw new Error(`${tls.key} holds no usable PEM private key (${e.message})`);
        throw err;
      }
    });
  }
  const auth = config.auth;
  if (auth !== undefined) {
    // Loaded only here: without auth, serve never needs jose and bcryptjs (idle memory).
    const [{ UserDirectory }, { loadOrCreateSigningKey, loadVerificationKeys }] = await Promise.all([import('../auth/users.js'), import('../auth/jwt.js')]);
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
async function writableDirectory(path: string, what: string): Promise<void> {
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

const describeUid = (): string => (typeof process.getuid === 'function' ? ` (uid ${process.getuid()})` : '');

/** The directories under `dir`, `depth` levels down (`dir` itself at depth 0); unreadable ones are still listed, not entered. */
async function directoriesUnder(dir: string, depth: number): Promise<string[]> {
  const out = [dir];
  if (depth === 0) return out;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out; // the access check below reports it
  }
  for (const e of entries) if (e.isDirectory()) out.push(...(await directoriesUnder(join(dir, e.name), depth - 1)));
  return out;
}

/**
 * Throws unless this process may use every part of an existing store in `root` as Wharf does: the
 * directories it creates and renames files in (blobs/ with its algorithm and prefix directories,
 * uploads/, trash/), the upload sessions it appends to, the database with its journal files and its
 * change signal.
 * Checking only `root` let a store created by another user (root, another image) start, then fail
 * its first push with a 500. A part that does not exist yet is created by Wharf itself: nothing to check.
 */
async function writableStore(root: string): Promise<void> {
  const dirs: string[] = [];
  const blobs = join(root, 'blobs');
  // The layout (storage/paths.ts): blobs/<algorithm>/<first 2 hex>/<hex>.
  if ((await statOrUndefined(blobs))?.isDirectory()) dirs.push(...(await directoriesUnder(blobs, 2)));
  else dirs.push(blobs);
  dirs.push(uploadsDir(root), join(root, 'trash'));
  const files = [metadataPath(root), `${metadataPath(root)}-wal`, `${metadataPath(root)}-shm`, changeSignalPath(root)];
  try {
    files.push(...(await readdir(uploadsDir(root))).filter(isSessionId).map((id) => join(uploadsDir(root), id)));
  } catch {
    // no uploads/ yet, or unreadable: reported with the directories
  }

  const denied: string[] = [];
  const wrong: string[] = [];
  for (const [paths, isDir] of [[dirs, true], [files, false]] as const) {
    for (const path of paths) {
      const st = await statOrUndefined(path);
      if (st === undefined) continue;
      if (st.isDirectory() !== isDir) {
        wrong.push(`${path} is ${isDir ? 'not a directory' : 'a directory'}`);
        continue;
      }
      try {
        await access(path, constants.R_OK | constants.W_OK | (isDir ? constants.X_OK : 0));
      } catch {
        denied.push(path);
      }
    }
  }
  if (wrong.length > 0) throw new Error(`the store in ${root} is damaged: ${wrong.join('; ')}`);
  if (denied.length > 0) {
    const shown = denied.length > 3 ? `${denied.slice(0, 3).join(', ')} and ${denied.length - 3} more` : denied.join(', ');
    const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
    throw new Error(
      `this process${describeUid()} cannot write parts of the existing store in ${root}: ${shown}; ` +
        `make the user Wharf runs as their owner${uid === undefined ? '' : ` (e.g. chown -R ${uid} ${root})`}`,
    );
  }
}
