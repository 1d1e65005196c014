// Which repository names are LOCAL and which belong to an UPSTREAM (DESIGN.md "Routing a repository
// name"), checked in this order:
//   1. first path component is a local namespace                      → LOCAL
//   2. first component is an upstream's prefix or its registry host    → that UPSTREAM, remote name = the rest
//   3. ?ns=<host> (containerd mirrors) matches an upstream's registry  → that UPSTREAM
//   4. the default upstream (Docker registry-mirrors sends bare names) → that UPSTREAM; none → LOCAL
// Docker Hub's single-component names get `library/`. Cached content is kept under one canonical
// repository name per upstream image, `<registry>/<remote name>`, however the client spelled it.
import { RegistryError } from './errors.js';
import { isValidName } from './reference.js';

export interface UpstreamRoute {
  name: string;
  registry: string;
  prefix?: string;
  default: boolean;
}

export type RouteTarget =
  | { kind: 'local'; repo: string }
  | {
      kind: 'upstream';
      upstream: string;
      /** The repository name at the upstream. */
      remote: string;
      /** Where its cached content lives here. */
      repo: string;
    };

const DOCKER_HUB = 'docker.io';

/** A registry host as a path component: `host:5000` → `host-5000` (colons are not allowed in names). */
export const cacheNamespace = (registry: string): string => registry.replace(':', '-');

export class Router {
  private readonly local: ReadonlySet<string>;
  private readonly byComponent = new Map<string, UpstreamRoute>();
  private readonly byRegistry = new Map<string, UpstreamRoute>();
  private readonly fallback: UpstreamRoute | undefined;

  constructor(upstreams: readonly UpstreamRoute[], localNamespaces: readonly string[]) {
    this.local = new Set(localNamespaces);
    for (const u of upstreams) {
      this.byRegistry.set(u.registry, u);
      this.byComponent.set(u.registry, u);
      this.byComponent.set(cacheNamespace(u.registry), u);
      if (u.prefix) this.byComponent.set(u.prefix, u);
    }
    this.fallback = upstreams.find((u) => u.default);
  }

  route(name: string, ns?: string): RouteTarget {
    const slash = name.indexOf('/');
    const first = slash < 0 ? name : name.slice(0, slash);
    if (this.local.has(first)) return { kind: 'local', repo: name };
    if (slash > 0) {
      const u = this.byComponent.get(first);
      if (u) return this.upstream(u, name.slice(slash + 1));
    }
    const byNs = ns === undefined ? undefined : this.byRegistry.get(ns.toLowerCase());
    if (byNs) return this.upstream(byNs, name);
    if (this.fallback) return this.upstream(this.fallback, name);
    return { kind: 'local', repo: name };
  }

  /** Whether any upstream is configured (everything is local otherwise). */
  get proxying(): boolean {
    return this.byRegistry.size > 0;
  }

  private upstream(u: UpstreamRoute, rest: string): RouteTarget {
    const remote = u.registry === DOCKER_HUB && !rest.includes('/') ? `library/${rest}` : rest;
    const repo = `${cacheNamespace(u.registry)}/${remote}`;
    if (!isValidName(repo)) {
      throw new RegistryError('NAME_INVALID', `repository name ${repo} (${u.name}) is too long or invalid`, { detail: { name: repo } });
    }
    return { kind: 'upstream', upstream: u.name, remote, repo };
  }
}
