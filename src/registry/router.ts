// Which repository names are LOCAL and which belong to an UPSTREAM (DESIGN.md "Routing a repository
// name"), checked in this order:
//   1. first path component is a local namespace                      → LOCAL
//   2. first component is an upstream's prefix or its registry host    → that UPSTREAM, remote name = the rest
//   3. ?ns=<host> (containerd mirrors) matches an upstream's registry  → that UPSTREAM
//   4. the default upstream (Docker registry-mirrors sends bare names) → that UPSTREAM; none → LOCAL
// Docker Hub's single-component names get `library/`. Cached content is kept under one repository
// name per upstream image, `<registry>/<remote name>`, however the client spelled it.
//
// Policies and token `access` claims speak of one canonical name per routed repository, whatever
// spelling reached it (prefix, registry host, `?ns=`, the default upstream):
//   - a local name as it is;
//   - an upstream image of the default upstream: its remote name as a client sends it bare
//     (`library/alpine`), when routing that bare name leads back to the same upstream and remote name;
//   - any other upstream image: `<registry as a path component>/<remote name>`, where its cache lives.
// A canonical name routes back to itself, so it can be handed to route() again (the token endpoint,
// the catalogue) and mean the same repository.
import { RegistryError } from './errors.js';
import { isValidName } from './reference.js';

export interface UpstreamRoute {
  name: string;
  registry: string;
  prefix?: string;
  default: boolean;
  /** Set when Wharf signs in to the upstream: its content is private (see `private` below). */
  username?: string;
}

export type RouteTarget =
  | { kind: 'local'; repo: string; canonical: string }
  | {
      kind: 'upstream';
      upstream: string;
      /** The repository name at the upstream. */
      remote: string;
      /** Where its cached content lives here. */
      repo: string;
      /** The name policies and tokens speak of (see the top of this file). */
      canonical: string;
      /** Wharf reaches this upstream with credentials: what it serves is not public. */
      private: boolean;
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
    if (this.local.has(first)) return { kind: 'local', repo: name, canonical: name };
    if (slash > 0) {
      const u = this.byComponent.get(first);
      if (u) return this.upstream(u, name.slice(slash + 1));
    }
    const byNs = ns === undefined ? undefined : this.byRegistry.get(ns.toLowerCase());
    if (byNs) return this.upstream(byNs, name);
    if (this.fallback) return this.upstream(this.fallback, name);
    return { kind: 'local', repo: name, canonical: name };
  }

  /**
   * The canonical name of a repository as stored here (a local name, or an upstream image's cache
   * name `<registry>/<remote>`): what the catalogue lists and policies judge. A stored name that no
   * longer routes to itself (the configuration changed) is left as it is.
   */
  canonicalOf(repo: string): string {
    let target: RouteTarget;
    try {
      target = this.route(repo);
    } catch {
      return repo;
    }
    return target.repo === repo ? target.canonical : repo;
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
    return { kind: 'upstream', upstream: u.name, remote, repo, canonical: this.canonicalName(u, remote, repo), private: u.username !== undefined };
  }

  /** The bare remote name when it routes back here unaided (see the top of this file), else the cache name. */
  private canonicalName(u: UpstreamRoute, remote: string, repo: string): string {
    if (u !== this.fallback) return repo;
    const slash = remote.indexOf('/');
    const first = slash < 0 ? remote : remote.slice(0, slash);
    if (this.local.has(first)) return repo;
    if (slash > 0 && this.byComponent.has(first)) return repo;
    return remote;
  }
}
