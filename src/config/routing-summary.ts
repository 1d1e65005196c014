// The one start-up line that says where each repository name goes, in the router's order
// (src/registry/router.ts): local namespaces, then each upstream's registry host and prefix (or
// ?ns=<registry>), then the default upstream, else local.
import type { WharfConfig } from './schema.js';

export function routingSummary(config: Pick<WharfConfig, 'local' | 'upstreams'>): string {
  const parts: string[] = [];
  const namespaces = config.local.namespaces;
  if (namespaces.length > 0) parts.push(`local: ${namespaces.map((ns) => `${ns}/*`).join(', ')}`);
  for (const u of config.upstreams) {
    const names = [`${u.registry}/*`, ...(u.prefix === undefined ? [] : [`${u.prefix}/*`]), `?ns=${u.registry}`];
    parts.push(`upstream ${u.name} (${u.url.replace(/\/$/, '')}): ${names.join(', ')}`);
  }
  const fallback = config.upstreams.find((u) => u.default);
  parts.push(`other names: ${fallback ? `upstream ${fallback.name} (default)` : 'local'}`);
  return `routing: ${parts.join('; ')}`;
}
