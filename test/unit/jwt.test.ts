import t, { type Test } from 'tap';
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  JwtError,
  loadOrCreateSigningKey,
  loadVerificationKeys,
  signJwt,
  verificationKeyOf,
  verifyJwt,
  type SigningKey,
  type VerifyOptions,
} from '../../src/auth/jwt.js';

const NOW = 1_700_000_000;
const dir = t.testdir({});
const es = await loadOrCreateSigningKey(join(dir, 'es.pem'), 'ES256');
const es2 = await loadOrCreateSigningKey(join(dir, 'es2.pem'), 'ES256');
const rs = await loadOrCreateSigningKey(join(dir, 'rs.pem'), 'RS256');

const claims = (extra: Record<string, unknown> = {}) => ({
  iss: 'wharf',
  sub: 'alice',
  aud: 'registry',
  exp: NOW + 300,
  iat: NOW,
  access: [{ type: 'repository', name: 'library/alpine', actions: ['pull'] }],
  ...extra,
});
const opts = (key: SigningKey = es, extra: Partial<VerifyOptions> = {}): VerifyOptions => ({
  keys: [verificationKeyOf(key)],
  issuer: 'wharf',
  audience: 'registry',
  nowSeconds: NOW,
  ...extra,
});

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
/** A token built by hand: any header, any payload, signed by `signer` over the real signing input. */
function raw(header: unknown, payload: unknown, signer: (input: Buffer) => Buffer = () => Buffer.alloc(0)): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
}
const esSigner = (key: KeyObject) => (input: Buffer) => sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
const rsSigner = (key: KeyObject) => (input: Buffer) => sign('sha256', input, key);

/** Asserts a JwtError with `reason` whose message does not echo the token or any part of it. */
async function refuses(t: Test, token: string, options: VerifyOptions, reason: JwtError['reason'], name: string = reason) {
  let caught: unknown;
  try {
    await verifyJwt(token, options);
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof JwtError, `${name}: throws JwtError`);
  t.equal((caught as JwtError).reason, reason, `${name}: reason`);
  const message = (caught as Error).message;
  for (const part of token.split('.').filter((p) => p.length >= 8)) t.notOk(message.includes(part), `${name}: message leaks no token text`);
}

t.test('round trip: ES256 and RS256 tokens verify and return the claims as signed', async (t) => {
  for (const key of [es, rs]) {
    const token = await signJwt(key, claims());
    t.same(await verifyJwt(token, opts(key)), claims(), key.alg);
    const [h, , s] = token.split('.') as [string, string, string];
    t.same(JSON.parse(Buffer.from(h, 'base64url').toString()), { alg: key.alg, typ: 'JWT', kid: key.kid });
    if (key.alg === 'ES256') t.equal(Buffer.from(s, 'base64url').length, 64, 'JOSE r||s, not DER');
  }
  t.same(verificationKeyOf(es), { alg: 'ES256', kid: es.kid, publicKey: es.publicKey });
});

t.test('key file: generated as PKCS#8 with mode 0600 in a 0700 dir, reloaded unchanged', async (t) => {
  const root = t.testdir({});
  const path = join(root, 'auth', 'nested', 'token-key.pem');
  const first = await loadOrCreateSigningKey(path, 'ES256');
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.equal(statSync(join(root, 'auth')).mode & 0o777, 0o700);
  const pem = readFileSync(path, 'utf8');
  t.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  t.same(readdirSync(join(root, 'auth', 'nested')), ['token-key.pem'], 'no temp file left behind');
  t.match(first.kid, /^[A-Za-z0-9_-]{22}$/);

  const second = await loadOrCreateSigningKey(path, 'ES256');
  t.equal(second.kid, first.kid, 'same kid after reload');
  t.equal(readFileSync(path, 'utf8'), pem, 'second load does not regenerate');
  t.ok(await verifyJwt(await signJwt(second, claims()), opts(first)), 'the reloaded key verifies with the first');

  const rsPath = join(root, 'rs.pem');
  const rsKey = await loadOrCreateSigningKey(rsPath, 'RS256');
  t.equal(rsKey.privateKey.asymmetricKeyDetails?.modulusLength, 2048);
  t.equal((await loadOrCreateSigningKey(rsPath, 'RS256')).kid, rsKey.kid);
});

t.test('key file: two instances starting at once end up with one key', async (t) => {
  const path = join(t.testdir({}), 'k.pem');
  const [a, b] = await Promise.all([loadOrCreateSigningKey(path, 'ES256'), loadOrCreateSigningKey(path, 'ES256')]);
  t.equal(a.kid, b.kid);
  t.equal((await loadOrCreateSigningKey(path, 'ES256')).kid, a.kid);
});

t.test('key file: SEC1 and PKCS#1 PEM are accepted, the kid is the public key fingerprint', async (t) => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const root = t.testdir({
    'sec1.pem': ec.privateKey.export({ type: 'sec1', format: 'pem' }),
    // what `openssl ecparam -name prime256v1 -genkey` writes: a parameters block, then the SEC1 key
    'ecparam.pem': `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${ec.privateKey.export({ type: 'sec1', format: 'pem' })}`,
    'pkcs8.pem': ec.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    'pkcs1.pem': rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }),
  });
  const sec1 = await loadOrCreateSigningKey(join(root, 'sec1.pem'), 'ES256');
  t.equal(sec1.kid, (await loadOrCreateSigningKey(join(root, 'pkcs8.pem'), 'ES256')).kid);
  t.equal(sec1.kid, (await loadOrCreateSigningKey(join(root, 'ecparam.pem'), 'ES256')).kid);
  const pkcs1 = await loadOrCreateSigningKey(join(root, 'pkcs1.pem'), 'RS256');
  t.ok(await verifyJwt(await signJwt(pkcs1, claims()), opts(pkcs1)));
  t.not(sec1.kid, es.kid);
});

t.test('key file: a key that does not fit the algorithm is refused, naming the file', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const root = t.testdir({ 'rsa.pem': rsa, 'p384.pem': p384, 'p256.pem': p256, 'small.pem': small, 'junk.pem': 'not a key\n' });
  await t.rejects(loadOrCreateSigningKey(join(root, 'rsa.pem'), 'ES256'), { message: /rsa\.pem.*rsa key, ES256 needs an EC P-256 key/ });
  await t.rejects(loadOrCreateSigningKey(join(root, 'p384.pem'), 'ES256'), { message: /p384\.pem.*secp384r1.*P-256/ });
  await t.rejects(loadOrCreateSigningKey(join(root, 'p256.pem'), 'RS256'), { message: /p256\.pem.*ec key, RS256 needs an RSA key/ });
  await t.rejects(loadOrCreateSigningKey(join(root, 'small.pem'), 'RS256'), { message: /small\.pem.*1024-bit/ });
  await t.rejects(loadOrCreateSigningKey(join(root, 'junk.pem'), 'ES256'), { message: /junk\.pem.*not a readable/ });
  t.equal(readFileSync(join(root, 'rsa.pem'), 'utf8'), rsa, 'a refused key file is left alone');
});

t.test('signature: forged payload, another key, a forged kid, a DER signature', async (t) => {
  const token = await signJwt(es, claims());
  const [h, , s] = token.split('.') as [string, string, string];
  await refuses(t, `${h}.${b64(claims({ sub: 'admin' }))}.${s}`, opts(), 'signature', 'payload changed after signing');

  await refuses(t, await signJwt(es2, claims()), opts(), 'signature', 'another ES256 key (its own kid)');
  await refuses(t, raw({ alg: 'ES256' }, claims(), esSigner(es2.privateKey)), opts(), 'signature', 'another ES256 key, no kid');
  await refuses(t, raw({ alg: 'ES256', kid: es.kid }, claims(), esSigner(es2.privateKey)), opts(), 'signature', 'another key claiming our kid');
  const rsOther = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  await refuses(t, raw({ alg: 'RS256', kid: rs.kid }, claims(), rsSigner(rsOther)), opts(rs), 'signature', 'another RS256 key');
  const der = (input: Buffer) => sign('sha256', input, es.privateKey); // DER, not r||s
  await refuses(t, raw({ alg: 'ES256', kid: es.kid }, claims(), der), opts(), 'signature', 'DER-encoded ES256 signature');
  await refuses(t, `${h}.${token.split('.')[1]}.`, opts(), 'signature', 'empty signature');
});

t.test('algorithm: none, HMAC with the public key as secret, missing and unknown alg', async (t) => {
  const both = opts(es, { keys: [verificationKeyOf(es), verificationKeyOf(rs)] });
  await refuses(t, raw({ alg: 'none', typ: 'JWT' }, claims()), both, 'algorithm', 'alg none, empty signature');
  await refuses(t, raw({ alg: 'None' }, claims()), both, 'algorithm', 'alg None');
  await refuses(t, raw({ typ: 'JWT' }, claims(), esSigner(es.privateKey)), both, 'algorithm', 'alg missing');
  await refuses(t, raw({ alg: 'ES384' }, claims(), esSigner(es.privateKey)), both, 'algorithm', 'alg ES384');
  await refuses(t, raw({ alg: ['ES256'] }, claims(), esSigner(es.privateKey)), both, 'algorithm', 'alg not a string');
  for (const [alg, key] of [['HS256', rs], ['HS256', es], ['HS512', rs]] as const) {
    // The classic key confusion: the attacker knows the public key and uses its PEM as the HMAC secret.
    const secret = key.publicKey.export({ type: 'spki', format: 'pem' });
    const hmac = (input: Buffer) => createHmac(alg === 'HS256' ? 'sha256' : 'sha512', secret).update(input).digest();
    await refuses(t, raw({ alg, typ: 'JWT', kid: key.kid }, claims(), hmac), both, 'algorithm', `${alg} keyed with the ${key.alg} public key`);
  }
});

t.test('a key only verifies its own algorithm', async (t) => {
  const rsToken = await signJwt(rs, claims());
  await refuses(t, rsToken, opts(es), 'signature', 'RS256 token against only an ES256 key');
  await refuses(t, raw({ alg: 'RS256' }, claims(), rsSigner(rs.privateKey)), opts(es), 'signature', 'RS256 token, no kid, only an ES256 key');
  await refuses(t, await signJwt(es, claims()), opts(rs), 'signature', 'ES256 token against only an RS256 key');
  // A mislabelled key (RSA public key marked ES256) is never used.
  const mislabelled = { alg: 'RS256' as const, kid: es.kid, publicKey: es.publicKey };
  await refuses(t, raw({ alg: 'RS256', kid: es.kid }, claims(), rsSigner(rs.privateKey)), opts(es, { keys: [mislabelled] }), 'signature', 'mislabelled key');
  t.ok(await verifyJwt(rsToken, opts(rs, { keys: [verificationKeyOf(es), verificationKeyOf(rs)] })), 'with both keys, the right one is chosen');
});

t.test('kid: an unknown kid is refused, no kid tries every key of the alg', async (t) => {
  await refuses(t, raw({ alg: 'ES256', kid: 'nope' }, claims(), esSigner(es.privateKey)), opts(), 'signature', 'unknown kid');
  await refuses(t, raw({ alg: 'ES256', kid: 7 }, claims(), esSigner(es.privateKey)), opts(), 'malformed', 'kid not a string');
  const keys = [verificationKeyOf(es2), verificationKeyOf(es)];
  t.ok(await verifyJwt(raw({ alg: 'ES256' }, claims(), esSigner(es.privateKey)), opts(es, { keys })), 'no kid: second key verifies');
});

t.test('time: exp and nbf/iat with the clock skew', async (t) => {
  await refuses(t, await signJwt(es, claims({ exp: NOW - 61 })), opts(), 'expired');
  // jose (RFC 7519 §4.1.4): the token is expired once now - skew reaches exp.
  t.ok(await verifyJwt(await signJwt(es, claims({ exp: NOW - 59 })), opts()), 'expired within the skew is accepted');
  await refuses(t, await signJwt(es, claims({ exp: NOW - 60 })), opts(), 'expired', 'exp exactly at the edge of the skew');
  await refuses(t, await signJwt(es, claims({ exp: NOW - 1 })), opts(es, { clockSkewSeconds: 0 }), 'expired', 'no skew');
  await refuses(t, await signJwt(es, claims({ nbf: NOW + 61 })), opts(), 'not-yet-valid', 'nbf in the future');
  t.ok(await verifyJwt(await signJwt(es, claims({ nbf: NOW + 60 })), opts()), 'nbf within the skew is accepted');
  await refuses(t, await signJwt(es, claims({ iat: NOW + 61 })), opts(), 'not-yet-valid', 'iat in the future');
  t.ok(await verifyJwt(await signJwt(es, claims({ iat: NOW + 60 })), opts()), 'iat within the skew is accepted');
  const live = await signJwt(es, claims({ exp: Math.floor(Date.now() / 1000) + 60 }));
  t.ok(await verifyJwt(live, { ...opts(), nowSeconds: undefined }), 'the default clock is now');
});

t.test('issuer and audience', async (t) => {
  await refuses(t, await signJwt(es, claims({ iss: 'evil' })), opts(), 'issuer');
  t.ok(await verifyJwt(await signJwt(es, claims({ iss: 'corp-idp' })), opts(es, { issuer: ['wharf', 'corp-idp'] })), 'issuer list');
  await refuses(t, await signJwt(es, claims({ iss: 'evil' })), opts(es, { issuer: ['wharf', 'corp-idp'] }), 'issuer', 'issuer list');
  await refuses(t, await signJwt(es, claims({ aud: 'other' })), opts(), 'audience');
  t.ok(await verifyJwt(await signJwt(es, claims({ aud: ['other', 'registry'] })), opts()), 'audience array containing ours');
  await refuses(t, await signJwt(es, claims({ aud: ['other', 'registries'] })), opts(), 'audience', 'audience array without ours');
});

t.test('claims: required and typed', async (t) => {
  const without = (name: string) => Object.fromEntries(Object.entries(claims()).filter(([k]) => k !== name));
  for (const name of ['exp', 'iss', 'sub', 'aud']) await refuses(t, await signJwt(es, without(name)), opts(), 'claims', `${name} missing`);
  for (const bad of [{ exp: String(NOW + 300) }, { exp: null }, { iss: 1 }, { sub: null }, { aud: [1] }, { aud: {} }, { nbf: '0' }, { iat: true }, { jti: 5 }]) {
    await refuses(t, await signJwt(es, claims(bad)), opts(), 'claims', JSON.stringify(bad));
  }
  t.equal((await verifyJwt(await signJwt(es, claims({ sub: '' })), opts())).sub, '', "sub '' (anonymous) is accepted");
});

t.test('malformed input is refused before any key is used', async (t) => {
  const good = await signJwt(es, claims());
  const [h, p, s] = good.split('.') as [string, string, string];
  const cases: Record<string, string> = {
    'empty string': '',
    '2 segments': `${h}.${p}`,
    '4 segments': `${good}.${s}`,
    'plus sign': `${h}.${p}+.${s}`,
    slash: `${h}/.${p}.${s}`,
    padding: `${h}.${p}.${s}==`,
    whitespace: `${h}.${p} .${s}`,
    'trailing newline': `${good}\n`,
    'empty header': `.${p}.${s}`,
    'empty payload': `${h}..${s}`,
    'non-JSON header': `${b64('{alg: ES256}')}.${p}.${s}`,
    'JSON string header': `${b64('"ES256"')}.${p}.${s}`,
  };
  for (const [name, token] of Object.entries(cases)) await refuses(t, token, opts(), 'malformed', name);
  // "YR" decodes like "YQ" but is not what any encoder writes: only one spelling of a token is accepted.
  await refuses(t, raw({ alg: 'ES256' }, claims()).replace(/\.$/, '.YR'), opts(), 'malformed', 'non-canonical base64url');
  await refuses(t, raw({ alg: 'ES256', kid: es.kid }, [claims()], esSigner(es.privateKey)), opts(), 'malformed', 'JSON array payload, validly signed');
  await refuses(t, raw({ alg: 'ES256', kid: es.kid }, 'null', esSigner(es.privateKey)), opts(), 'malformed', 'null payload');
  await refuses(t, raw({ alg: 'ES256', kid: es.kid, crit: ['b64'] }, claims(), esSigner(es.privateKey)), opts(), 'malformed', 'crit header');

  const big = await signJwt(es, claims({ pad: 'x'.repeat(100 * 1024) }));
  t.ok(big.length > 100 * 1024);
  await refuses(t, big, opts(), 'malformed', '100 KB token');
  await t.rejects(verifyJwt(big, opts()), { message: /longer than 8192/ });
  t.ok(await verifyJwt(big, opts(es, { maxLength: 200 * 1024 })), 'the limit is only a length: raised, the same token verifies');
});

t.test('verification keys from a PEM public key file', async (t) => {
  const root = t.testdir({
    'es.pub.pem': es.publicKey.export({ type: 'spki', format: 'pem' }),
    'rs.pub.pem': rs.publicKey.export({ type: 'pkcs1', format: 'pem' }),
    'bundle.pem': `${es.publicKey.export({ type: 'spki', format: 'pem' })}\n${rs.publicKey.export({ type: 'spki', format: 'pem' })}`,
    'private.pem': es.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    'ed.pem': generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }),
    'empty.pem': '',
  });
  const [esKey, ...rest] = loadVerificationKeys(join(root, 'es.pub.pem'));
  t.equal(rest.length, 0);
  t.equal(esKey?.alg, 'ES256');
  t.equal(esKey?.kid, undefined, 'PEM carries no kid');
  t.ok(await verifyJwt(await signJwt(es, claims()), opts(es, { keys: [esKey!] })), 'a kid-less key is tried whatever kid the token names');
  await refuses(t, await signJwt(es2, claims()), opts(es, { keys: [esKey!] }), 'signature', 'a kid-less key still checks the signature');

  const [rsKey] = loadVerificationKeys(join(root, 'rs.pub.pem'));
  t.equal(rsKey?.alg, 'RS256');
  t.ok(await verifyJwt(await signJwt(rs, claims()), opts(rs, { keys: [rsKey!] })));
  t.same(loadVerificationKeys(join(root, 'bundle.pem')).map((k) => k.alg), ['ES256', 'RS256']);

  t.throws(() => loadVerificationKeys(join(root, 'private.pem')), { message: /private\.pem.*PRIVATE KEY/ });
  t.throws(() => loadVerificationKeys(join(root, 'ed.pem')), { message: /ed\.pem.*ed25519/ });
  t.throws(() => loadVerificationKeys(join(root, 'empty.pem')), { message: /empty\.pem/ });
  t.throws(() => loadVerificationKeys(join(root, 'missing.pem')), { message: /missing\.pem/ });
});

t.test('verification keys from a JWKS document', async (t) => {
  const jwk = (key: SigningKey, extra: Record<string, unknown> = {}) => ({ ...key.publicKey.export({ format: 'jwk' }), kid: key.kid, ...extra });
  const enc = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const root = t.testdir({
    'jwks.json': JSON.stringify({
      keys: [
        jwk(es, { use: 'sig', alg: 'ES256' }),
        jwk(rs),
        { ...enc.export({ format: 'jwk' }), kid: 'enc', use: 'enc' },
        { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' },
        { ...generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' }), alg: 'ES384', kid: 'p384' },
      ],
    }),
    'private-members.json': JSON.stringify({ keys: [{ ...es.privateKey.export({ format: 'jwk' }), kid: 'x' }] }),
    'alg-mismatch.json': JSON.stringify({ keys: [jwk(rs, { alg: 'ES256' })] }),
    'no-keys.json': JSON.stringify({ issuer: 'x' }),
    'only-enc.json': JSON.stringify({ keys: [{ ...enc.export({ format: 'jwk' }), use: 'enc' }] }),
    'bad.json': '{"keys": [',
  });
  const keys = loadVerificationKeys(join(root, 'jwks.json'));
  t.same(
    keys.map((k) => [k.alg, k.kid]),
    [
      ['ES256', es.kid],
      ['RS256', rs.kid],
    ],
    'use enc, oct and P-384 keys are skipped',
  );
  t.ok(await verifyJwt(await signJwt(es, claims()), opts(es, { keys })));
  t.ok(await verifyJwt(await signJwt(rs, claims()), opts(rs, { keys })));
  await refuses(t, await signJwt(es2, claims()), opts(es, { keys }), 'signature', 'kid not in the JWKS');

  const [fromPrivate] = loadVerificationKeys(join(root, 'private-members.json'));
  t.equal(fromPrivate?.publicKey.type, 'public', 'a JWK that also carries private members gives a public key');
  t.throws(() => loadVerificationKeys(join(root, 'alg-mismatch.json')), { message: /alg-mismatch\.json.*keys\[0\].*ES256/ });
  t.throws(() => loadVerificationKeys(join(root, 'no-keys.json')), { message: /no-keys\.json.*"keys" array/ });
  t.throws(() => loadVerificationKeys(join(root, 'only-enc.json')), { message: /only-enc\.json.*no usable/ });
  t.throws(() => loadVerificationKeys(join(root, 'bad.json')), { message: /bad\.json.*not valid JSON/ });
});

t.test('signJwt refuses a key that does not fit its alg', async (t) => {
  await t.rejects(signJwt({ ...es, alg: 'RS256' }, claims()), { message: /RS256 needs an RSA key/ });
});
