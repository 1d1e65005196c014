// Access policy: what an identity may do to a repository.
//
// Repositories are named canonically (src/registry/router.ts): a local name as it is, an image of the
// default upstream as a client sends it bare (`library/alpine`), any other upstream image as
// `<registry>/<remote name>` (`ghcr.io/owner/app`, `registry.corp.example-5000/tool`), however the
// client spelled it (prefix, registry host, `?ns=`). Rules are written against those names.
//
// Rules only allow; there are no deny rules. What an identity may do to a repository is the union of
// the actions of every rule whose `repositories` match the name and whose `subjects` match the
// identity. With no matching rule, nothing is allowed.
//
// Repository globs: `*` matches any run of characters except `/` (within one path component, also
// when it is the whole pattern), `**` matches any run including `/` (a lone `**` matches every
// repository), every other character matches itself. `library/**` matches `library/x` and
// `library/x/y` but not `library` itself; `team/**/app` needs at least one component between. `{user}`
// stands for the caller's user name as one whole component: `users/{user}/**` matches
// `users/alice/app` for alice only; it never matches for anonymous callers, nor for a user whose name
// could not be one path component (containing `/`, glob characters or nothing at all).
//
// Subjects:
//   <name>          the user with that name
//   group:<g>       any user in group g
//   anonymous       ONLY a request without credentials. A signed-in user is never matched by
//                   `anonymous`: to let everyone pull, list both `anonymous` and `authenticated`.
//   authenticated   any signed-in user (not anonymous)
//   owner           the user who owns the repository: the first user who pushed to it (a repository
//                   nobody has pushed to yet is owned by whoever pushes first, see AccessControl)
//
// Built-in rules (auth.defaultPolicies, on by default) apply only to repositories that no configured
// rule's `repositories` match, whatever its subjects: a written rule is the whole truth for what it
// covers. For the rest:
//   - anonymous and authenticated may pull repositories routed to a public upstream (one Wharf reaches
//     without credentials); authenticated users may pull those of a private upstream;
//   - authenticated users may pull, push and delete repositories routed to the local registry.
// With defaultPolicies: false only auth.policies apply.
//
// Service tokens are not subject to rules at all, built-in or configured: a token may do exactly the
// union of the actions of its scopes whose repository globs (the same glob syntax) match the name.
//
// The management API (/api) is for users in auth.adminGroup; tokens and anonymous never qualify.

import { LRUCache } from 'lru-cache';
import { ACTIONS, expandActions, type Action, type ActionPattern, type Identity } from './types.js';

/** One allow rule; the same shape as a config auth.policies entry. */
export interface PolicyRule {
  repositories: string[];
  subjects: string[];
  actions: ActionPattern[];
}

/** Where a repository is served from, as far as the built-in rules care. */
export type RepositoryZone = 'local' | 'public-upstream' | 'private-upstream';

export interface PolicyOptions {
  /** Apply the built-in rules too (config auth.defaultPolicies). */
  defaults: boolean;
  /** Where a canonical repository name is routed. */
  zone: (repo: string) => RepositoryZone;
  /** Group that may use the management API (config auth.adminGroup). */
  adminGroup: string;
}

/** What the policy needs to know about a repository beyond its name. */
export interface RepositoryFacts {
  /** The user who owns it (subject `owner`). */
  owner?: string;
}

type Matcher = (repo: string) => boolean;

const USER = '{user}';

/** A user name that can stand for `{user}`: one whole path component, nothing a glob would read. */
const componentName = (name: string): boolean => name !== '' && !/[/*{}]/.test(name);

/**
 * The regex source for one glob. `{user}` becomes `user` taken literally, or any one component when
 * `user` is null (to ask which repositories a rule covers, whoever asks).
 */
function globSource(pattern: string, user: string | null): string {
  let source = '';
  for (let i = 0; i < pattern.length; ) {
    if (pattern.startsWith(USER, i)) {
      source += user === null ? '[^/]+' : [...user].map(escapeRegExp).join('');
      i += USER.length;
    } else if (pattern[i] === '*') {
      let run = 0;
      while (pattern[i] === '*') {
        run++;
        i++;
      }
      // `***` and longer mean the same as `**`; folding the run keeps the regex from stacking
      // adjacent quantifiers, which only adds backtracking.
      source += run >= 2 ? '.*' : '[^/]*';
    } else {
      source += escapeRegExp(pattern[i]!);
      i++;
    }
  }
  return source;
}

function compileGlob(pattern: string, user: string | null): Matcher {
  const re = new RegExp(`^${globSource(pattern, user)}$`, 's');
  return (repo) => re.test(repo);
}

function escapeRegExp(ch: string): string {
  return /[\\^$.|?*+()[\]{}]/.test(ch) ? `\\${ch}` : ch;
}

const never: Matcher = () => false;

// A memo of compiled globs, per user for `{user}` patterns. It is bounded because token scopes and
// user names are data, not config, and it is not observable: a miss only recompiles.
const compiled = new LRUCache<string, Matcher>({ max: 1000 });

/** The matcher of `pattern` for `user` (undefined: no user, so `{user}` matches nothing). */
function matcherFor(pattern: string, user: string | undefined): Matcher {
  const personal = pattern.includes(USER);
  if (personal && (user === undefined || !componentName(user))) return never;
  const key = personal ? `${user}\u0000${pattern}` : pattern;
  let m = compiled.get(key);
  if (m === undefined) {
    m = compileGlob(pattern, personal ? user! : null);
    compiled.set(key, m);
  }
  return m;
}

/**
 * True when `repo` matches the glob: `*` matches any run of characters except '/', `**` any run
 * including '/', `{user}` the name `user` as one component, other characters literally.
 */
export function globMatch(pattern: string, repo: string, user?: string): boolean {
  return matcherFor(pattern, user)(repo);
}

interface CompiledRule {
  /** Which repositories the rule speaks of, whoever asks (`{user}` = any one component). */
  covers: Matcher[];
  patterns: readonly string[];
  /** A pattern names `{user}`: the caller's own name must match too, beyond what `covers` says. */
  personal: boolean;
  users: ReadonlySet<string>;
  groups: ReadonlySet<string>;
  anonymous: boolean;
  authenticated: boolean;
  owner: boolean;
  actions: readonly Action[];
}

const GROUP_PREFIX = 'group:';

function compileRule(rule: PolicyRule): CompiledRule {
  const users = new Set<string>();
  const groups = new Set<string>();
  let anonymous = false;
  let authenticated = false;
  let owner = false;
  for (const s of rule.subjects) {
    if (s === 'anonymous') anonymous = true;
    else if (s === 'authenticated') authenticated = true;
    else if (s === 'owner') owner = true;
    else if (s.startsWith(GROUP_PREFIX)) groups.add(s.slice(GROUP_PREFIX.length));
    else users.add(s);
  }
  return {
    covers: rule.repositories.map((p) => compileGlob(p, null)),
    patterns: rule.repositories,
    personal: rule.repositories.some((p) => p.includes(USER)),
    users,
    groups,
    anonymous,
    authenticated,
    owner,
    actions: expandActions(rule.actions),
  };
}

function subjectMatches(rule: CompiledRule, id: Identity, facts: RepositoryFacts): boolean {
  switch (id.kind) {
    case 'anonymous':
      return rule.anonymous;
    case 'user':
      return (
        rule.authenticated ||
        rule.users.has(id.name) ||
        id.groups.some((g) => rule.groups.has(g)) ||
        (rule.owner && facts.owner !== undefined && facts.owner === id.name)
      );
    case 'token':
      return false;
  }
}

export class Policy {
  readonly #rules: readonly CompiledRule[];
  readonly #opts: PolicyOptions;
  /** Whether any subject of the rules needs to know who owns a repository. */
  readonly usesOwners: boolean;

  constructor(rules: readonly PolicyRule[], opts: PolicyOptions) {
    this.#rules = rules.map(compileRule);
    this.#opts = { ...opts };
    this.usesOwners = this.#rules.some((r) => r.owner);
  }

  /** What `identity` may do to the repository with canonical name `repo`, in pull, push, delete order. */
  allowed(identity: Identity, repo: string, facts: RepositoryFacts = {}): Action[] {
    const granted = new Set<Action>();
    if (identity.kind === 'token') {
      for (const scope of identity.scopes) {
        if (scope.repositories.some((p) => globMatch(p, repo))) {
          for (const a of expandActions(scope.actions)) granted.add(a);
        }
      }
      return ACTIONS.filter((a) => granted.has(a));
    }
    const user = identity.kind === 'user' ? identity.name : undefined;
    let covered = false;
    for (const rule of this.#rules) {
      if (!rule.covers.some((m) => m(repo))) continue;
      covered = true;
      if (rule.actions.every((a) => granted.has(a))) continue;
      if (!subjectMatches(rule, identity, facts)) continue;
      // `covers` already matched; only a `{user}` pattern needs the caller's own name checked.
      if (rule.personal && !rule.patterns.some((p) => matcherFor(p, user)(repo))) continue;
      for (const a of rule.actions) granted.add(a);
    }
    if (!covered && this.#opts.defaults) for (const a of this.builtIn(identity, repo)) granted.add(a);
    return ACTIONS.filter((a) => granted.has(a));
  }

  /** allowed(...).includes(action) */
  permits(identity: Identity, repo: string, action: Action, facts: RepositoryFacts = {}): boolean {
    return this.allowed(identity, repo, facts).includes(action);
  }

  /** A user in the admin group; service tokens and anonymous never. */
  isAdmin(identity: Identity): boolean {
    return identity.kind === 'user' && identity.groups.includes(this.#opts.adminGroup);
  }

  /** The built-in rules (see the top of this file), for a repository no configured rule covers. */
  private builtIn(identity: Identity, repo: string): readonly Action[] {
    switch (this.#opts.zone(repo)) {
      case 'local':
        return identity.kind === 'user' ? ACTIONS : [];
      case 'private-upstream':
        return identity.kind === 'user' ? ['pull'] : [];
      case 'public-upstream':
        return ['pull'];
    }
  }
}
