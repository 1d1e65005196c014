// Shared helpers for the pull-through integration tests in test/integration (proxy-*.test.ts): digests,
// real HTTP requests to a running Wharf (fetch, never following redirects: Wharf never redirects), the
// OCI error body check, and a Wharf with one default docker.io upstream.
import { createHash } from 'node:crypto';
import type { Test } from 'tap';
import type { DockerRegistry } from './docker-registry.js';
import { startWharf, type TestServer } from './server.js';

export const REQUEST_TIMEOUT_MS = 30_000;
/** The name of the upstream hubWharf configures. */
export const UPSTREAM = 'dockerhub';

export const sha = (b: Buffer | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

export interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
}

export async function req(url: string, init: RequestInit = {}): Promise<Res> {
  const res = await fetch(url, { redirect: 'manual', ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, text: body.toString('utf8') };
}

/** The first error of an OCI error body `{"errors":[...]}` (asserting there is one). */
export function ociError(t: Test, res: Res): { code: string; message: string } {
  try {
    const doc = JSON.parse(res.text) as { errors?: Array<{ code: string; message: string }> };
    const first = doc.errors?.[0];
    t.ok(first, 'an OCI error body {"errors":[...]}');
    return first ?? { code: '', message: '' };
  } catch {
    t.fail(`not an OCI error body: ${res.text.slice(0, 200)}`);
    return { code: '', message: '' };
  }
}

/** A Wharf with `reg` as its one upstream (UPSTREAM, registry docker.io, the default unless opts.default is false). */
export async function hubWharf(t: Test, reg: DockerRegistry, extra: Record<string, unknown> = {}, opts: { default?: boolean } = {}): Promise<TestServer> {
  return startWharf(t, { upstreams: [{ name: UPSTREAM, url: reg.url, registry: 'docker.io', default: opts.default ?? true, ...extra }] });
}
