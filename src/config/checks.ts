// Rules between keys that a JSON schema cannot express; each broken rule is one violation.
import { readFileSync } from 'node:fs';
import type { WharfConfig } from './schema.js';

export function crossFieldViolations(config: WharfConfig): string[] {
  const out: string[] = [];
  const defaults = config.upstreams.filter((u) => u.default).map((u) => u.name);
  if (defaults.length > 1) out.push(`upstreams: at most one upstream may be the default; ${defaults.join(', ')} all say default: true`);

  const seen = new Map<string, string>();
  const claim = (key: string, owner: string, where: string) => {
    const other = seen.get(key);
    if (other !== undefined) out.push(`${where}: "${key}" is already used by ${other}`);
    else seen.set(key, owner);
  };
  for (const ns of config.local.namespaces) claim(ns, `local.namespaces`, 'local.namespaces');
  const names = new Set<string>();
  config.upstreams.forEach((u, i) => {
    const at = `upstreams.${i}`;
    if (names.has(u.name)) out.push(`${at}.name: another upstream is already named "${u.name}"`);
    names.add(u.name);
    claim(u.registry, `upstream ${u.name}`, `${at}.registry`);
    if (u.prefix !== undefined) claim(u.prefix, `upstream ${u.name}`, `${at}.prefix`);
    const secrets = [u.password, u.passwordFile, u.passwordEnv].filter((v) => v !== undefined).length;
    if (secrets > 1) out.push(`${at}: give only one of password, passwordFile, passwordEnv`);
    if (secrets > 0 && u.username === undefined) out.push(`${at}.username: required when a password is given`);
  });
  return out;
}

/**
 * Resolves passwordFile and passwordEnv into password, so nothing below config/ reads the
 * environment. Returns the violations (missing file or variable).
 */
export function resolveSecrets(config: WharfConfig, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  config.upstreams.forEach((u, i) => {
    if (u.passwordFile !== undefined) {
      try {
        u.password = readFileSync(u.passwordFile, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        out.push(`upstreams.${i}.passwordFile: cannot read ${u.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    } else if (u.passwordEnv !== undefined) {
      const value = env[u.passwordEnv];
      if (value === undefined || value === '') out.push(`upstreams.${i}.passwordEnv: the environment variable ${u.passwordEnv} is not set`);
      else u.password = value;
    }
  });
  return out;
}
