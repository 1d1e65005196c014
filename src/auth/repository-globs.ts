// Repository globs that cannot mean what they say. Policies and service-token scopes match canonical
// repository names (src/registry/router.ts): a glob written with another spelling of an upstream
// (its prefix, its registry host, the host with its `:`, `docker.io/...` for a default Docker Hub, a
// `?ns=` form) or one that no valid name can match covers nothing, silently; under the built-in rules
// that opens the repository it was meant to restrict. Such a glob is refused, with the canonical
// spelling to write instead. Rewriting it in place was considered and rejected: the configuration
// would then say one thing and do another.
import { cacheNamespace, type RouteTarget } from '../registry/router.js';
import { isValidName } from '../registry/reference.js';

/** Routes a repository name as requests are routed (Router.route). */
export type RouteName = (name: string, ns?: string) => RouteTarget;

/** What the check needs to know of an upstream to say how a glob named it. */
export interface GlobUpstream {
  name: string;
  registry: string;
  prefix?: string;
}

export interface GlobContext {
  route: RouteName;
  upstreams: readonly GlobUpstream[];
}

const USER = '{user}';
const NS = '?ns=';

/**
 * Why `glob` cannot be used in a policy or a token scope, with the spelling to write instead;
 * undefined when it is a glob on canonical names.
 */
export function repositoryGlobProblem(glob: string, ctx: GlobContext): string | undefined {
  const quoted = JSON.stringify(glob);
  const at = glob.indexOf(NS);
  const pattern = at < 0 ? glob : glob.slice(0, at);
  const ns = at < 0 ? undefined : glob.slice(at + NS.length);
  const respelt = canonicalSpelling(pattern, ns, ctx);
  if (respelt !== undefined) {
    // The default upstream's images are named bare: its whole namespace has no glob of its own, and a
    // bare wildcard would also cover every local repository and every other upstream.
    if (/^[*{]/.test(respelt.glob)) {
      return (
        `${quoted} names upstream ${respelt.upstream} ${respelt.by}; policies and tokens match canonical names, and its images ` +
        `are named bare, so no glob covers all of them without covering other repositories too: list its namespaces ` +
        `(e.g. "library/**", "<organisation>/**")`
      );
    }
    return `${quoted} names upstream ${respelt.upstream} ${respelt.by}; policies and tokens match canonical names: write ${JSON.stringify(respelt.glob)}`;
  }
  if (!matchesSomeName(glob)) {
    const lower = glob.toLowerCase();
    const instead = lower !== glob && matchesSomeName(lower) ? `: write ${JSON.stringify(lower)}` : '';
    return (
      `${quoted} can never match a repository name (lowercase letters, digits and separators . _ __ - in components ` +
      `joined by /; the only wildcards are *, ** and {user})${instead}`
    );
  }
  return undefined;
}

/** Whether some valid repository name could match `glob` (each literal component is one, each wildcard's text is allowed). */
function matchesSomeName(glob: string): boolean {
  return glob
    .split(USER)
    .join('u')
    .split('/')
    .every((component) => (component.includes('*') ? /^[a-z0-9._*-]+$/.test(component) : isValidName(component)));
}

/**
 * When the glob's first component is literal and routes to an upstream whose canonical names are
 * spelt otherwise: which upstream, how the glob named it, and the canonical glob. The router decides,
 * on a sample name that stands for the glob (`x` for each wildcard, `x/x` for `**`).
 */
function canonicalSpelling(
  pattern: string,
  ns: string | undefined,
  ctx: GlobContext,
): { upstream: string; by: string; glob: string } | undefined {
  const slash = pattern.indexOf('/');
  const first = slash < 0 ? pattern : pattern.slice(0, slash);
  if (ns === undefined && (slash < 0 || /[*{]/.test(first))) return undefined;
  const sample = pattern.split(USER).join('x').replace(/\*\*+/g, 'x/x').replace(/\*/g, 'x');
  let target: RouteTarget;
  try {
    target = ctx.route(sample, ns);
  } catch {
    return undefined;
  }
  if (target.kind !== 'upstream' || (target.canonical === sample && ns === undefined)) return undefined;
  // The canonical name ends with the remote name, which ends with what followed the upstream's
  // component in the sample (or is all of it, for a ?ns= form): put the glob's own text back there.
  const rest = ns === undefined ? pattern.slice(slash + 1) : pattern;
  const sampleRest = ns === undefined ? sample.slice(sample.indexOf('/') + 1) : sample;
  if (!target.canonical.endsWith(sampleRest)) return undefined;
  const canonical = target.canonical.slice(0, target.canonical.length - sampleRest.length) + rest;
  if (canonical === pattern && ns === undefined) return undefined;
  const u = ctx.upstreams.find((c) => c.name === target.upstream);
  let by = 'by another spelling';
  if (ns !== undefined) by = `through ${NS}${ns}`;
  else if (u?.prefix === first) by = 'by its prefix';
  else if (u?.registry === first && first.includes(':')) by = 'by its registry host with ":" (names never contain ":")';
  else if (u?.registry === first || (u !== undefined && cacheNamespace(u.registry) === first)) {
    by = canonical === rest ? 'by its registry host, but its images are named bare (it is the default upstream)' : 'by its registry host';
  }
  return { upstream: target.upstream, by, glob: canonical };
}

/** The check as a function of the configuration's routing, for the service-token store. */
export const globChecker =
  (ctx: GlobContext) =>
  (glob: string): string | undefined =>
    // A token has no user of its own: a {user} scope could never match.
    glob.includes(USER)
      ? `${JSON.stringify(glob)}: {user} stands for the caller's user name, and a service token has none; name the repositories`
      : repositoryGlobProblem(glob, ctx);
