// Splits a /v2/ path into the endpoint and its parts. Repository names contain slashes, so the
// endpoint is found from the end; the name is then checked against the spec's grammar.
import { assertName } from '../registry/reference.js';

export type V2Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'referrers'; name: string; digest: string };

const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => V2Route]> = [
  [/^(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1] as string })],
  [/^(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1] as string, reference: m[2] as string })],
  [/^(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1] as string })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1] as string, id: m[2] as string })],
  [/^(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1] as string, digest: m[2] as string })],
  [/^(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1] as string, digest: m[2] as string })],
];

/** `rest` is the path after `/v2/`, without the query string. Undefined when no endpoint matches. */
export function parseV2Path(rest: string): V2Route | undefined {
  if (rest === '') return { kind: 'base' };
  if (rest === '_catalog') return { kind: 'catalog' };
  for (const [re, build] of PATTERNS) {
    const m = re.exec(rest);
    if (m) {
      const route = build(m);
      if ('name' in route) assertName(route.name);
      return route;
    }
  }
  return undefined;
}
