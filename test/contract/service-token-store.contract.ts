// The ServiceTokenStore contract: every driver (SQLite now, PostgreSQL next) must pass this suite.
// Run it from a driver's test file: serviceTokenStoreContract(t, 'sqlite', (t) => a fresh, empty store and
// the RegistryMetadata of the same database, closed when t ends); the metadata shows that tokens create
// no repository.
import { createHash } from 'node:crypto';
import type { ServiceTokenRecord, ServiceTokenStore } from '../../src/auth/service-token-store.js';
import type { RegistryMetadata } from '../../src/metadata/registry-metadata.js';
import type { TestObject } from './contract-helpers.js';

/** A token store and the registry metadata kept in the same database. */
export interface ServiceTokenStoreFixture {
  tokens: ServiceTokenStore;
  metadata: RegistryMetadata;
}

/** A service token record; ids are 12 characters like the real ones, hashes 64 hex digits. */
function token(id: string, extra: Partial<ServiceTokenRecord> = {}): ServiceTokenRecord {
  return {
    id: id.padEnd(12, '0'),
    name: `ci-${id}`,
    secretHash: createHash('sha256').update(id).digest('hex'),
    scopes: [{ repositories: ['team/**'], actions: ['pull'] }],
    createdAt: 1_700_000_000_000,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    ...extra,
  };
}

export function serviceTokenStoreContract(
  tap: TestObject,
  name: string,
  factory: (t: TestObject) => Promise<ServiceTokenStoreFixture>,
): Promise<unknown> {
  return tap.test(`ServiceTokenStore contract: ${name}`, async (t) => {
    /** A fresh, empty store, closed when `tt` ends. */
    const fresh = (tt: TestObject): Promise<ServiceTokenStoreFixture> => factory(tt);

    t.test('service tokens: create and get round-trip every field', async (t) => {
      const { tokens: store, metadata } = await fresh(t);
      t.equal(await store.getServiceToken('nothere00000'), undefined);
      const full = token('a', {
        name: 'Deploy.bot_1-x',
        scopes: [
          { repositories: ['team/**', 'docker.io/library/*'], actions: ['pull', 'push'] },
          { repositories: ['**'], actions: ['*'] },
          { repositories: ['é/ü'], actions: ['delete'] },
        ],
        expiresAt: 1_800_000_000_000,
        lastUsedAt: 1_700_000_000_500,
      });
      await store.createServiceToken(full);
      t.same(await store.getServiceToken(full.id), full, 'every field, scopes in order');
      const plain = token('b');
      await store.createServiceToken(plain);
      const got = await store.getServiceToken(plain.id);
      t.same(got, plain);
      t.equal(got?.expiresAt, null, 'null stays null');
      t.equal(got?.revokedAt, null);
      t.equal(got?.lastUsedAt, null);
      t.equal(await store.getServiceToken(plain.id.toUpperCase()), undefined, 'ids are case-sensitive');
      t.same(await metadata.listRepositories(), [], 'tokens create no repository');
    });

    t.test('service tokens: a duplicate id rejects and changes nothing', async (t) => {
      const { tokens: store } = await fresh(t);
      const a = token('a');
      await store.createServiceToken(a);
      await t.rejects(store.createServiceToken({ ...a, name: 'other', secretHash: 'f'.repeat(64) }));
      t.same(await store.getServiceToken(a.id), a);
      t.equal((await store.listServiceTokens()).length, 1);
    });

    t.test('service tokens: a name is unique among tokens that are not revoked', async (t) => {
      const { tokens: store } = await fresh(t);
      const first = token('a', { name: 'ci' });
      await store.createServiceToken(first);
      await t.rejects(store.createServiceToken(token('b', { name: 'ci' })), /taken/, 'clash with an active token');
      t.equal(await store.getServiceToken(token('b').id), undefined, 'the clashing token was not stored');
      // Expiry does not free a name: only revocation does (the name stays readable in logs and lists).
      const expired = token('c', { name: 'old', expiresAt: 1 });
      await store.createServiceToken(expired);
      await t.rejects(store.createServiceToken(token('d', { name: 'old' })), /taken/, 'an expired token still holds its name');

      t.equal(await store.revokeServiceToken(first.id, 1_700_000_001_000), true);
      const second = token('e', { name: 'ci' });
      await store.createServiceToken(second);
      t.equal(await store.revokeServiceToken(second.id, 1_700_000_002_000), true);
      const third = token('f', { name: 'ci' });
      await store.createServiceToken(third);
      const named = (await store.listServiceTokens()).filter((r) => r.name === 'ci');
      t.same(
        named.map((r) => [r.id, r.revokedAt]),
        [
          [first.id, 1_700_000_001_000],
          [second.id, 1_700_000_002_000],
          [third.id, null],
        ],
        'revoked tokens keep their name alongside the one active token',
      );
      await t.rejects(store.createServiceToken(token('g', { name: 'ci' })), /taken/, 'the new active token holds the name');
      await t.resolves(store.createServiceToken(token('h', { name: 'ci', revokedAt: 5 })), 'a revoked record never clashes');
    });

    t.test('service tokens: listed by createdAt, then id', async (t) => {
      const { tokens: store } = await fresh(t);
      t.same(await store.listServiceTokens(), []);
      await store.createServiceToken(token('c', { createdAt: 300 }));
      await store.createServiceToken(token('b', { createdAt: 100 }));
      await store.createServiceToken(token('z', { createdAt: 200 }));
      await store.createServiceToken(token('a', { createdAt: 200 }));
      await store.revokeServiceToken(token('b').id, 400);
      const list = await store.listServiceTokens();
      t.same(
        list.map((r) => r.id),
        ['b', 'a', 'z', 'c'].map((id) => token(id).id),
        'revoked tokens are listed too',
      );
      t.same(list[2], token('z', { createdAt: 200 }), 'full records');
    });

    t.test('service tokens: revoke once; the first revocation time is kept', async (t) => {
      const { tokens: store } = await fresh(t);
      const a = token('a');
      const b = token('b');
      await store.createServiceToken(a);
      await store.createServiceToken(b);
      t.equal(await store.revokeServiceToken(a.id, 5000), true);
      t.equal((await store.getServiceToken(a.id))?.revokedAt, 5000);
      t.equal(await store.revokeServiceToken(a.id, 6000), false, 'already revoked');
      t.equal((await store.getServiceToken(a.id))?.revokedAt, 5000, 'revokedAt unchanged');
      t.equal(await store.revokeServiceToken('missing00000', 5000), false, 'unknown id');
      t.equal((await store.getServiceToken(b.id))?.revokedAt, null, 'other tokens untouched');
      t.same({ ...(await store.getServiceToken(a.id)), revokedAt: null }, a, 'revoking changes only revokedAt');
    });

    t.test('service tokens: touch sets lastUsedAt, never backwards', async (t) => {
      const { tokens: store } = await fresh(t);
      const a = token('a');
      await store.createServiceToken(a);
      await store.createServiceToken(token('b'));
      await store.touchServiceToken(a.id, 2000);
      t.equal((await store.getServiceToken(a.id))?.lastUsedAt, 2000);
      await store.touchServiceToken(a.id, 3000);
      t.equal((await store.getServiceToken(a.id))?.lastUsedAt, 3000);
      await store.touchServiceToken(a.id, 2500);
      t.equal((await store.getServiceToken(a.id))?.lastUsedAt, 3000, 'a late, older touch does not move it back');
      t.equal((await store.getServiceToken(token('b').id))?.lastUsedAt, null, 'other tokens untouched');
      await t.resolves(store.touchServiceToken('missing00000', 1), 'unknown id is a no-op');
      t.equal((await store.listServiceTokens()).length, 2, 'touch creates nothing');
      await store.revokeServiceToken(a.id, 4000);
      await store.touchServiceToken(a.id, 5000);
      t.match(await store.getServiceToken(a.id), { revokedAt: 4000, lastUsedAt: 5000 }, 'touch does not clear revocation');
    });
  });
}
