// Image references as clients write them (`alpine`, `docker.io/library/alpine:3.20`,
// `ghcr.io/org/app@sha256:...`), normalised the way docker does: no registry host means docker.io, a
// single-component Docker Hub name gets `library/`, no tag and no digest means `latest`. A tag may be a
// glob (`3.*`): the tags the upstream lists that match it (tag-glob.ts).
import { RegistryError } from '../registry/errors.js';
import { isValidName, isValidTag } from '../registry/reference.js';
import { tryParseDigest, truncate } from '../oci/digest.js';
import { isTagGlob } from './tag-glob.js';

export interface ImageRef {
  /** The registry host (`docker.io`, `ghcr.io`, `registry:5000`). */
  host: string;
  /** The repository at that registry (`library/alpine`). */
  path: string;
  /** A tag, a tag glob, or undefined when only a digest was given. */
  tag?: string;
  digest?: string;
}

const DOCKER_HUB = 'docker.io';
/** Other spellings of Docker Hub's host that docker accepts. */
const HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$/;
/** Longest reference accepted (a name of 255 characters, a tag of 128 and a sha512 digest fit). */
export const MAX_REFERENCE_LENGTH = 512;

const invalid = (text: string, why: string): RegistryError =>
  new RegistryError('INVALID_REQUEST', `image "${truncate(text, 100)}": ${why}`, { detail: { image: truncate(text, 100) } });

/** Parses and normalises one reference; INVALID_REQUEST saying what is wrong otherwise. */
export function parseImageRef(text: string): ImageRef {
  if (text.length === 0 || text.length > MAX_REFERENCE_LENGTH) throw invalid(text, `a reference is 1 to ${MAX_REFERENCE_LENGTH} characters`);
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const parsed = tryParseDigest(rest.slice(at + 1));
    if (!parsed) throw invalid(text, `"${truncate(rest.slice(at + 1), 80)}" is not a sha256 or sha512 digest`);
    digest = parsed.digest;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag) && !isTagGlob(tag)) throw invalid(text, `"${truncate(tag, 80)}" is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}, or a pattern with * and ?)`);
    if (digest !== undefined && isTagGlob(tag)) throw invalid(text, 'a tag pattern and a digest together name nothing');
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  let host = DOCKER_HUB;
  let path = rest;
  // docker's rule: the first component is a registry host when it has a dot or a port, or is localhost.
  if (slash > 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!HOST.test(first)) throw invalid(text, `"${truncate(first, 80)}" is not a registry host`);
    host = first.toLowerCase();
    path = rest.slice(slash + 1);
  }
  if (HUB_ALIASES.has(host)) host = DOCKER_HUB;
  if (host === DOCKER_HUB && path !== '' && !path.includes('/')) path = `library/${path}`;
  if (!isValidName(path)) {
    throw invalid(text, `"${truncate(path, 80)}" is not a repository name (lowercase letters, digits and separators . _ __ - in components joined by /)`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { host, path, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** The reference written back in full: `docker.io/library/alpine:3.20`, `ghcr.io/org/app@sha256:...`. */
export function formatImageRef(ref: ImageRef): string {
  return `${ref.host}/${ref.path}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}
