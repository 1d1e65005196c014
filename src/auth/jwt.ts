// JSON Web Tokens for the registry token flow: the keys Wharf signs with, the public keys it trusts,
// and a deliberately narrow verifier; signatures and claims on jose. Only ES256 and RS256 exist here:
// no HMAC (a public key must never become a shared secret, the classic key-confusion attack), no
// `none`, no keys taken from the token itself (jwk, jku, x5u, x5c headers are ignored).
// RFC 7515 (JWS), RFC 7517 (JWK), RFC 7519 (JWT).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';

export type JwtAlgorithm = 'ES256' | 'RS256';

export interface SigningKey {
  alg: JwtAlgorithm;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface VerificationKey {
  alg: JwtAlgorithm;
  /** Absent for keys read from PEM: such a key is tried whatever kid a token names. */
  kid?: string;
  publicKey: KeyObject;
}

export interface JwtClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  [claim: string]: unknown;
}

export interface VerifyOptions {
  keys: readonly VerificationKey[];
  /** iss must equal one of these. */
  issuer: string | readonly string[];
  /** aud (a string or an array) must contain it. */
  audience: string;
  /** Default Math.floor(Date.now() / 1000). */
  nowSeconds?: number;
  /** Default 60: exp, nbf and iat are checked with this leeway. */
  clockSkewSeconds?: number;
  /** Default 8192: longer tokens are refused before any parsing. */
  maxLength?: number;
}

export class JwtError extends Error {
  override readonly name = 'JwtError';
  constructor(
    readonly reason: 'malformed' | 'algorithm' | 'signature' | 'expired' | 'not-yet-valid' | 'issuer' | 'audience' | 'claims',
    message: string,
  ) {
    super(message);
  }
}

const ALGORITHMS: readonly string[] = ['ES256', 'RS256'];
const DEFAULT_MAX_LENGTH = 8192;
const DEFAULT_CLOCK_SKEW = 60;
const MIN_RSA_BITS = 2048;
const generateKeyPairAsync = promisify(generateKeyPair);

// ---------------------------------------------------------------------------------------------------
// Keys

/** What is wrong with `key` for `alg`, or undefined when it fits. */
function keyMismatch(key: KeyObject, alg: JwtAlgorithm): string | undefined {
  const type = key.asymmetricKeyType;
  if (alg === 'ES256') {
    if (type !== 'ec') return `is a ${type ?? 'non-asymmetric'} key, ES256 needs an EC P-256 key`;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve !== 'prime256v1') return `is an EC key on curve ${curve ?? 'unknown'}, ES256 needs P-256 (prime256v1)`;
    return undefined;
  }
  // rsa-pss keys are refused too: RS256 is PKCS#1 v1.5 padding.
  if (type !== 'rsa') return `is a ${type ?? 'non-asymmetric'} key, RS256 needs an RSA key`;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) return `is a ${bits}-bit RSA key, RS256 needs at least ${MIN_RSA_BITS} bits`;
  return undefined;
}

/** The algorithm a public key can verify, or undefined. */
function algorithmOf(key: KeyObject): JwtAlgorithm | undefined {
  if (keyMismatch(key, 'ES256') === undefined) return 'ES256';
  if (keyMismatch(key, 'RS256') === undefined) return 'RS256';
  return undefined;
}

/** A stable key id: base64url of the first 16 bytes of sha256 over the SPKI DER of the public key. */
function fingerprint(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest().subarray(0, 16).toString('base64url');
}

function signingKeyFrom(privateKey: KeyObject, alg: JwtAlgorithm, path: string): SigningKey {
  const wrong = keyMismatch(privateKey, alg);
  if (wrong !== undefined) throw new Error(`token signing key ${path} ${wrong}`);
  const publicKey = createPublicKey(privateKey);
  return { alg, kid: fingerprint(publicKey), privateKey, publicKey };
}

function parsePrivateKey(pem: string, path: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new Error(`token signing key ${path} is not a readable unencrypted PEM private key (PKCS#8, SEC1 or PKCS#1)`, { cause: err });
  }
}

/**
 * Loads a PEM private key (PKCS#8 or SEC1/PKCS#1 accepted) from `path`; when the file does not exist,
 * generates one for `alg` (P-256 for ES256, RSA 2048 for RS256), writes it as PKCS#8 PEM with mode 0600
 * (creating parent dirs, mode 0700, atomically via a temp file) and returns it. A key whose type does not
 * fit `alg` is an Error naming the file and what is wrong. kid = a fingerprint of the public key.
 */
export async function loadOrCreateSigningKey(path: string, alg: JwtAlgorithm): Promise<SigningKey> {
  const existing = await readIfExists(path);
  if (existing !== undefined) return signingKeyFrom(parsePrivateKey(existing, path), alg, path);

  const { privateKey } =
    alg === 'ES256'
      ? await generateKeyPairAsync('ec', { namedCurve: 'P-256' })
      : await generateKeyPairAsync('rsa', { modulusLength: MIN_RSA_BITS, publicExponent: 0x10001 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const winner = await publishKeyFile(path, typeof pem === 'string' ? pem : pem.toString('utf8'));
  // Another process may have created the file between our read and our write: its key wins, so that
  // every instance sharing the storage directory signs with the same key.
  return signingKeyFrom(winner === undefined ? privateKey : parsePrivateKey(winner, path), alg, path);
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read token signing key ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Writes `pem` to a temp file beside `path` (mode 0600, flushed) and links it into place. link() fails
 * when `path` already exists, unlike rename(), so two instances starting at once cannot overwrite each
 * other's key; the loser gets the winner's PEM back. File systems without hard links fall back to rename.
 */
async function publishKeyFile(path: string, pem: string): Promise<string | undefined> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(8).toString('hex')}.tmp`;
  try {
    const file = await open(tmp, 'wx', 0o600);
    try {
      await file.writeFile(pem, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await link(tmp, path);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return await readFile(path, 'utf8');
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
      await rename(tmp, path);
      return undefined;
    }
  } catch (err) {
    throw new Error(`cannot write token signing key ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

export function verificationKeyOf(key: SigningKey): VerificationKey {
  return { alg: key.alg, kid: key.kid, publicKey: key.publicKey };
}

/**
 * Public keys from a file: PEM public keys or certificates (one or more blocks), or a JWKS document
 * {keys:[...]} (kty EC crv P-256 → ES256, kty RSA → RS256; a JWK's `alg`, when present, must agree;
 * keys with `use` other than 'sig' and key types we do not verify with are skipped). Errors name the file.
 */
export function loadVerificationKeys(path: string): VerificationKey[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read token verification keys ${path}: ${(err as Error).message}`, { cause: err });
  }
  const keys = text.trimStart().startsWith('{') ? keysFromJwks(text, path) : keysFromPem(text, path);
  if (keys.length === 0) throw new Error(`token verification keys ${path} holds no usable ES256 (EC P-256) or RS256 (RSA) signing key`);
  return keys;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const PEM_PUBLIC_TYPES = new Set(['PUBLIC KEY', 'RSA PUBLIC KEY', 'CERTIFICATE']);

function keysFromPem(text: string, path: string): VerificationKey[] {
  const keys: VerificationKey[] = [];
  for (const [block, label] of text.matchAll(PEM_BLOCK)) {
    // A private key here would mean the operator copied the wrong file, maybe someone else's secret.
    if (!PEM_PUBLIC_TYPES.has(label!)) throw new Error(`token verification keys ${path}: a "${label}" PEM block, expected PUBLIC KEY or CERTIFICATE`);
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey(block);
    } catch (err) {
      throw new Error(`token verification keys ${path}: unreadable ${label} PEM block`, { cause: err });
    }
    const alg = algorithmOf(publicKey);
    if (alg === undefined) throw new Error(`token verification keys ${path}: a ${publicKey.asymmetricKeyType} key, expected EC P-256 or RSA of ${MIN_RSA_BITS}+ bits`);
    keys.push({ alg, publicKey });
  }
  if (keys.length === 0) throw new Error(`token verification keys ${path} is neither PEM nor a JWKS JSON document`);
  return keys;
}

function keysFromJwks(text: string, path: string): VerificationKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`token verification keys ${path} is not valid JSON`, { cause: err });
  }
  const list = isObject(doc) ? doc.keys : undefined;
  if (!Array.isArray(list)) throw new Error(`token verification keys ${path}: a JWKS document needs a "keys" array`);
  const keys: VerificationKey[] = [];
  list.forEach((jwk: unknown, i) => {
    const where = `token verification keys ${path}: keys[${i}]`;
    if (!isObject(jwk)) throw new Error(`${where} is not an object`);
    if (jwk.use !== undefined && jwk.use !== 'sig') return;
    if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify')) return;
    // Only the public members go to node: a JWK carrying `d` would otherwise load as a private key.
    let alg: JwtAlgorithm;
    let members: JsonWebKey;
    if (jwk.kty === 'EC' && jwk.crv === 'P-256') {
      alg = 'ES256';
      members = { kty: 'EC', crv: 'P-256', x: jwk.x as string, y: jwk.y as string };
    } else if (jwk.kty === 'RSA') {
      alg = 'RS256';
      members = { kty: 'RSA', n: jwk.n as string, e: jwk.e as string };
    } else {
      if (jwk.alg === 'ES256' || jwk.alg === 'RS256') throw new Error(`${where} says alg ${jwk.alg} but is kty ${String(jwk.kty)} crv ${String(jwk.crv)}`);
      return; // e.g. an ES384 or EdDSA key published beside ours: not one we verify with
    }
    if (jwk.alg !== undefined && jwk.alg !== alg) throw new Error(`${where} says alg ${String(jwk.alg)} but its key type fits ${alg}`);
    if (jwk.kid !== undefined && typeof jwk.kid !== 'string') throw new Error(`${where} has a kid that is not a string`);
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: members, format: 'jwk' });
    } catch (err) {
      throw new Error(`${where} is not a valid ${jwk.kty} public key`, { cause: err });
    }
    const wrong = keyMismatch(publicKey, alg);
    if (wrong !== undefined) throw new Error(`${where} ${wrong}`);
    keys.push(jwk.kid === undefined ? { alg, publicKey } : { alg, kid: jwk.kid, publicKey });
  });
  return keys;
}

// ---------------------------------------------------------------------------------------------------
// Signing and verification, on jose: the signature, exp/nbf with the clock tolerance, iss and aud. Around
// it, what jose does not refuse on its own: an algorithm allow-list checked before any key is chosen, one
// spelling of each segment (canonical base64url), no crit extensions, typed claims and iat not in the future.

/** header {alg, typ:'JWT', kid}; payload = claims as given. */
export async function signJwt(key: SigningKey, claims: Record<string, unknown>): Promise<string> {
  const wrong = keyMismatch(key.privateKey, key.alg);
  if (wrong !== undefined) throw new Error(`signing key ${key.kid} ${wrong}`);
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid }).sign(key.privateKey);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url: the alphabet only, no padding, and canonical (re-encodes to the same text). */
function decodeSegment(segment: string, what: string): Buffer {
  const bytes = BASE64URL.test(segment) ? Buffer.from(segment, 'base64url') : undefined;
  if (bytes === undefined || bytes.toString('base64url') !== segment) throw new JwtError('malformed', `token ${what} is not canonical base64url`);
  return bytes;
}

function decodeObject(segment: string, what: string): Record<string, unknown> {
  if (segment === '') throw new JwtError('malformed', `token ${what} is empty`);
  let value: unknown;
  try {
    value = JSON.parse(decodeSegment(segment, what).toString('utf8'));
  } catch (err) {
    if (err instanceof JwtError) throw err;
    throw new JwtError('malformed', `token ${what} is not JSON`);
  }
  if (!isObject(value)) throw new JwtError('malformed', `token ${what} is not a JSON object`);
  return value;
}

/** Verifies the signature, then the claims, and returns them; anything else rejects with a JwtError. */
export async function verifyJwt(token: string, opts: VerifyOptions): Promise<JwtClaims> {
  const maxLength = opts.maxLength ?? DEFAULT_MAX_LENGTH;
  if (typeof token !== 'string' || token.length === 0) throw new JwtError('malformed', 'token is empty');
  if (token.length > maxLength) throw new JwtError('malformed', `token is longer than ${maxLength} characters`);
  const segments = token.split('.');
  if (segments.length !== 3) throw new JwtError('malformed', `token has ${segments.length} segments, expected 3`);
  const [headerPart, payloadPart, signaturePart] = segments as [string, string, string];

  // Structure first (cheap, and trusts nothing): both JSON objects, the signature well-formed.
  const header = decodeObject(headerPart, 'header');
  decodeObject(payloadPart, 'payload');
  decodeSegment(signaturePart, 'signature');

  const alg = header.alg;
  if (typeof alg !== 'string' || !ALGORITHMS.includes(alg)) {
    // The header's own value stays out of the message: it is attacker-written text headed for the logs.
    throw new JwtError('algorithm', `token algorithm is ${alg === undefined ? 'missing' : 'not accepted'} (ES256 or RS256 only)`);
  }
  // RFC 7515 §4.1.11: extensions the recipient does not understand make the token invalid; we know none.
  if (header.crit !== undefined) throw new JwtError('malformed', 'token header has crit extensions, none are supported');
  const kid = header.kid;
  if (kid !== undefined && typeof kid !== 'string') throw new JwtError('malformed', 'token header kid is not a string');

  // Keys are never taken from the token (jwk, jku, x5u, x5c are ignored): only ours, of the token's alg.
  const candidates = opts.keys.filter(
    (k) => k.alg === alg && (kid === undefined || k.kid === undefined || k.kid === kid) && keyMismatch(k.publicKey, k.alg) === undefined,
  );
  if (candidates.length === 0) {
    throw new JwtError('signature', kid === undefined ? `no ${alg} key to verify the token with` : `no ${alg} key with the token's kid`);
  }
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  const skew = opts.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW;
  const options = {
    algorithms: [alg],
    issuer: typeof opts.issuer === 'string' ? opts.issuer : [...opts.issuer],
    audience: opts.audience,
    clockTolerance: skew,
    currentDate: new Date(now * 1000),
    requiredClaims: ['exp', 'iss', 'sub', 'aud'],
  };
  for (const key of candidates) {
    let payload: Record<string, unknown>;
    try {
      payload = (await jwtVerify(token, key.publicKey, options)).payload;
    } catch (err) {
      // Another key of the same algorithm may be the one (no kid, or a JWKS without kids).
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) continue;
      throw fromJose(err);
    }
    return checkClaims(payload, now, skew);
  }
  throw new JwtError('signature', 'token signature does not verify');
}

/** A jose error as a JwtError whose message holds no token text. */
function fromJose(err: unknown): JwtError {
  if (err instanceof joseErrors.JWTExpired) return new JwtError('expired', 'token has expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    // A claim of the wrong type is a malformed claim, not someone else's issuer or audience.
    const value = err.payload[err.claim];
    const typed = err.claim === 'aud' ? typeof value === 'string' || (Array.isArray(value) && value.every((a) => typeof a === 'string')) : typeof value === 'string' || isNumber(value);
    const failed = err.reason === 'check_failed' && typed;
    if (failed && (err.claim === 'nbf' || err.claim === 'iat')) return new JwtError('not-yet-valid', `token is not valid yet (${err.claim})`);
    if (failed && err.claim === 'iss' && typeof value === 'string') return new JwtError('issuer', 'token issuer is not trusted');
    if (failed && err.claim === 'aud') return new JwtError('audience', 'token audience does not include this service');
    return new JwtError('claims', `token ${err.claim} claim is ${err.reason === 'missing' ? 'missing' : 'not valid'}`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new JwtError('algorithm', 'token algorithm is not accepted (ES256 or RS256 only)');
  if (err instanceof joseErrors.JOSEError) return new JwtError('malformed', `token is not a valid JWS (${err.code})`);
  throw err;
}

/** The claim types jose leaves open, and iat not in the future. */
function checkClaims(claims: Record<string, unknown>, now: number, skew: number): JwtClaims {
  const { sub, aud, iat, jti } = claims;
  if (typeof sub !== 'string') throw new JwtError('claims', 'token sub claim is missing or not a string');
  const audiences = typeof aud === 'string' || (Array.isArray(aud) && aud.every((a) => typeof a === 'string'));
  if (!audiences) throw new JwtError('claims', 'token aud claim is missing or not a string or array of strings');
  if (jti !== undefined && typeof jti !== 'string') throw new JwtError('claims', 'token jti claim is not a string');
  if (isNumber(iat) && iat > now + skew) throw new JwtError('not-yet-valid', 'token was issued in the future (iat)');
  return claims as JwtClaims;
}
