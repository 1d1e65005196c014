// What every contract suite of test/contract/ shares: the tap test type, digests made from small numbers,
// and manifest records with defaults.
import type t from 'tap';
import type { PutManifestInput } from '../../src/metadata/registry-metadata.js';

type Tap = typeof t;
/** A tap test object (the root `t` or a subtest's). */
export type TestObject = Parameters<Parameters<Tap['test']>[0]>[0] | Tap;

/** A syntactically valid sha256 digest made from a small number, so tests read as `dg(1)`, `dg(2)`. */
export function dg(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}

export const IMAGE = 'application/vnd.oci.image.manifest.v1+json';

/** A manifest record for putManifest: an untagged image manifest of 512 bytes without references unless `extra` says. */
export function manifest(repo: string, digest: string, extra: Partial<PutManifestInput> = {}): PutManifestInput {
  return {
    repo,
    digest,
    mediaType: IMAGE,
    size: 512,
    subject: null,
    artifactType: null,
    annotations: null,
    references: [],
    tags: [],
    ...extra,
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
