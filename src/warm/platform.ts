// Platforms to warm (`linux/amd64`, `linux/arm/v7`) and which children of an index they select.
import { RegistryError } from '../registry/errors.js';
import { truncate } from '../oci/digest.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const PART = /^[a-z0-9][a-z0-9._-]{0,31}$/;

export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => PART.test(p))) {
    throw new RegistryError('INVALID_REQUEST', `platform "${truncate(text, 60)}" is not os/arch or os/arch/variant (e.g. linux/amd64, linux/arm/v7)`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export const formatPlatform = (p: Platform): string => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;

/**
 * Whether an index child's platform is one of `wanted`. A wanted platform without a variant takes
 * every variant of its architecture; arm64 without a variant is v8, as docker reads it.
 */
export function platformMatches(wanted: readonly Platform[], p: Partial<Platform> | undefined): boolean {
  if (!p) return false;
  const variant = p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
  return wanted.some((w) => w.os === p.os && w.architecture === p.architecture && (w.variant === undefined || w.variant === variant));
}
