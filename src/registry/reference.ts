// Repository name and tag grammar (distribution-spec "Pulling manifests").
// Everything that reaches storage passed through here, so no name or tag can carry a path traversal.
import { RegistryError, asRegistryError } from './errors.js';
import { checkDigest, truncate, tryParseDigest, type ParsedDigest } from '../oci/digest.js';

const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** distribution limits a repository name to 255 characters. */
export const MAX_NAME_LENGTH = 255;

export const isValidName = (name: string): boolean => name.length <= MAX_NAME_LENGTH && NAME.test(name);
export const isValidTag = (tag: string): boolean => TAG.test(tag);

export function assertName(name: string): string {
  if (!isValidName(name)) {
    throw new RegistryError(
      'NAME_INVALID',
      `invalid repository name "${truncate(name)}": lowercase letters, digits and separators (. _ __ -) in components joined by /, at most ${MAX_NAME_LENGTH} characters`,
      { detail: { name: truncate(name) } },
    );
  }
  return name;
}

export function assertTag(tag: string): string {
  if (!isValidTag(tag)) {
    throw new RegistryError('MANIFEST_INVALID', `invalid tag "${truncate(tag)}": [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, {
      detail: { tag: truncate(tag) },
    });
  }
  return tag;
}

/** A digest from a request; anything else is DIGEST_INVALID saying what is wrong with it. */
export function parseDigest(value: string): ParsedDigest {
  try {
    return checkDigest(value);
  } catch (err) {
    throw asRegistryError(err) ?? err;
  }
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string };

/** A manifest reference is a tag or a digest; a malformed one never reaches storage. */
export function parseReference(ref: string): Reference {
  if (ref.includes(':')) {
    const d = tryParseDigest(ref);
    if (!d) {
      throw new RegistryError('DIGEST_INVALID', `"${truncate(ref)}" is neither a tag nor a supported digest`, {
        detail: { reference: truncate(ref) },
      });
    }
    return { kind: 'digest', digest: d.digest };
  }
  if (!isValidTag(ref)) {
    throw new RegistryError('MANIFEST_INVALID', `invalid tag "${truncate(ref)}": [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`, {
      detail: { reference: truncate(ref) },
    });
  }
  return { kind: 'tag', tag: ref };
}
