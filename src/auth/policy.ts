// Access policy: what an identity may do to a repository.
//
// Rules only allow; there are no deny rules. What an identity may do to a repository is the union of
// the actions of every rule whose `repositories` match the name and whose `subjects` match the
// identity. With no matching rule, nothing is allowed.
//
// Repository globs: `*` matches any run of characters except `/` (within one path component), `**`
// matches any run including `/`, every other character matches itself. A pattern that is exactly `*`
// or `**` matches every repository. `library/**` matches `library/x` and `library/x/y` but not
// `library` itself; `team/**/app` needs at least one component between `team` and `app`.
//
// Subjects:
//   <name>          the user with that name
//   group:<g>       any user in group g
//   anonymous       ONLY a request without credentials. A signed-in user is never matched by
//                   `anonymous`: to let everyone pull, list both `anonymous` and `authenticated`.
//   authenticated   any signed-in user (not anonymous)
//
// Built-in rules (auth.defaultPolicies, on by default), applied in addition to auth.policies:
//   - anonymous and authenticated may pull repositories routed to an upstream;
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

export interface PolicyOptions {
  /** Apply the built-in rules too (config auth.defaultPolicies). */
  defaults: boolean;
  /** Whether a repository name is routed to the local registry (true) or to an upstream (false). */
  isLocal: (repo: string) => boolean;
  /** Group that may use the management API (config auth.adminGroup). */
  adminGroup: string;
}

type Matcher = (repo: string) => boolean;

const matchAll: Matcher = () => true;

/** Builds the matcher for one glob. Patterns come from config and admin-issued token scopes. */
function compileGlob(pattern: string): Matcher {
  if (pattern === '*' || pattern === '**') return matchAll;
  let source = '';
  for (let i = 0; i < pattern.length; ) {
    if (pattern[i] === '*') {
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
  const re = new RegExp(`^${source}$`, 's');
  return (repo) => re.test(repo);
}

function escapeRegExp(ch: string): string {
  return /[\\^$.|?*+()[\]{}]/.test(ch) ? `\\${ch}` : ch;
}

// A memo of compiled globs for globMatch, which token scopes use on every request. It is bounded
// because token scopes are data, not config, and it is not observable: a miss only recompiles.
const compiled = new LRUCache<string, Matcher>({ max: 1000 });

/**
 * True when `repo` matches the glob: `*` matches any run of characters except '/', `**` any run
 * including '/', other characters literally; a pattern that is exactly `*` or `**` matches every
 * repository.
 */
export function globMatch(pattern: string, repo: string): boolean {
  let m = compiled.get(pattern);
  if (m === undefined) {
    m = compileGlob(pattern);
    compiled.set(pattern, m);
  }
  return m(repo);
}

interface CompiledRule {
  repositories: Matcher[];
  users: ReadonlySet<string>;
  groups: ReadonlySet<string>;
  anonymous: boolean;
  authenticated: boolean;
  actions: readonly Action[];
}

const GROUP_PREFIX = 'group:';

function compileRule(rule: PolicyRule): CompiledRule {
  const users = new Set<string>();
  const groups = new Set<string>();
  let anonymous = false;
  let authenticated = false;
  for (const s of rule.subjects) {
    if (s === 'anonymous') anonymous = true;
    else if (s === 'authenticated') authenticated = true;
    else if (s.startsWith(GROUP_PREFIX)) groups.add(s.slice(GROUP_PREFIX.length));
    else users.add(s);
  }
  return {
    repositories: rule.repositories.map(compileGlob),
    users,
    groups,
    anonymous,
    authenticated,
    actions: expandActions(rule.actions),
  };
}

function subjectMatches(rule: CompiledRule, id: Identity): boolean {
  switch (id.kind) {
    case 'anonymous':
      return rule.anonymous;
    case 'user':
      return rule.authenticated || rule.users.has(id.name) || id.groups.some((g) => rule.groups.has(g));
    case 'token':
      return false;
  }
}

export class Policy {
  readonly #rules: readonly CompiledRule[];
  readonly #opts: PolicyOptions;

  constructor(rules: readonly PolicyRule[], opts: PolicyOptions) {
    this.#rules = rules.map(compileRule);
    this.#opts = { ...opts };
  }

  /** What `identity` may do to `repo`, in pull, push, delete order. */
  allowed(identity: Identity, repo: string): Action[] {
    const granted = new Set<Action>();
    if (identity.kind === 'token') {
      for (const scope of identity.scopes) {
        if (scope.repositories.some((p) => globMatch(p, repo))) {
          for (const a of expandActions(scope.actions)) granted.add(a);
        }
      }
      return ACTIONS.filter((a) => granted.has(a));
    }
    if (this.#opts.defaults) {
      const local = this.#opts.isLocal(repo);
      if (identity.kind === 'user') {
        if (local) return [...ACTIONS];
        granted.add('pull');
      } else if (!local) {
        granted.add('pull');
      }
    }
    for (const rule of this.#rules) {
      if (rule.actions.every((a) => granted.has(a))) continue;
      if (!subjectMatches(rule, identity)) continue;
      if (!rule.repositories.some((m) => m(repo))) continue;
      for (const a of rule.actions) granted.add(a);
      if (granted.size === ACTIONS.length) break;
    }
    return ACTIONS.filter((a) => granted.has(a));
  }

  /** allowed(...).includes(action) */
  permits(identity: Identity, repo: string, action: Action): boolean {
    return this.allowed(identity, repo).includes(action);
  }

  /** A user in the admin group; service tokens and anonymous never. */
  isAdmin(identity: Identity): boolean {
    return identity.kind === 'user' && identity.groups.includes(this.#opts.adminGroup);
  }
}
