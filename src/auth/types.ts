// The shared vocabulary of authentication and access control: who is asking (Identity) and what
// they may do to a repository (Action). Every other module in src/auth speaks these types.

/** What a request does to a repository: GET/HEAD → pull; POST/PUT/PATCH → push; DELETE → delete. */
export type Action = 'pull' | 'push' | 'delete';
export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

/** An action as written in config and token scopes: `*` stands for all three. */
export type ActionPattern = Action | '*';

/** Repository globs and the actions allowed on them (a service token's own limits). */
export interface TokenScope {
  repositories: string[];
  actions: ActionPattern[];
}

export type Identity =
  | { kind: 'anonymous' }
  /** A user from auth.users or the htpasswd file; groups from the user entry and auth.groups. */
  | { kind: 'user'; name: string; groups: string[] }
  /** A service token: it may do exactly what its scopes say, no more. */
  | { kind: 'token'; name: string; tokenId: string; scopes: TokenScope[] };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

/** The name logged and put in a JWT's `sub` claim ('' for anonymous). */
export const subjectOf = (id: Identity): string => (id.kind === 'anonymous' ? '' : id.name);

/** Expands `*` and removes duplicates, in pull, push, delete order. */
export function expandActions(patterns: readonly string[]): Action[] {
  if (patterns.includes('*')) return [...ACTIONS];
  return ACTIONS.filter((a) => patterns.includes(a));
}

/**
 * The scope that opens the management API, in the Docker token spec's grammar (type:name:actions):
 * requested at /auth/token as `scope=wharf:api:manage`, carried in the token's `access` claim as
 * {type: 'wharf', name: 'api', actions: ['manage']}.
 */
export const MANAGE_SCOPE = { type: 'wharf', name: 'api', action: 'manage', text: 'wharf:api:manage' } as const;
