import { unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { hashSync } from 'bcryptjs';
import { UserDirectory, type UserDirectoryOptions } from '../../src/auth/users.js';

// Cost 4, the minimum, keeps the tests fast.
const hash = (pw: string) => hashSync(pw, 4);
/** The same hash under the $2y$ prefix that Apache's htpasswd -B writes. */
const hash2y = (pw: string) => hash(pw).replace(/^\$2b\$/, '$2y$');

function options(over: Partial<UserDirectoryOptions> = {}): UserDirectoryOptions {
  return { users: [], groups: {}, ...over };
}

/** Moves the file's mtime so a change is seen even within one timestamp tick. */
function touch(file: string, secondsAhead: number) {
  const when = Date.now() / 1000 + secondsAhead;
  utimesSync(file, when, when);
}

t.test('htpasswd file: comments, blank lines, CRLF, $2a$/$2b$/$2y$', async (t) => {
  const dir = t.testdir({
    htpasswd: [
      '# created with htpasswd -B',
      '',
      `alice:${hash2y('alice-pw')}`,
      `  bob:${hash('bob-pw').replace(/^\$2b\$/, '$2a$')}\r`,
      `carol:${hash('carol-pw')}`,
      '   # indented comment',
      '',
    ].join('\n'),
  });
  const users = await UserDirectory.open(options({ htpasswd: join(dir, 'htpasswd') }));
  t.same(await users.verify('alice', 'alice-pw'), { kind: 'user', name: 'alice', groups: [] });
  t.same(await users.verify('bob', 'bob-pw'), { kind: 'user', name: 'bob', groups: [] });
  t.same(await users.verify('carol', 'carol-pw'), { kind: 'user', name: 'carol', groups: [] });
  t.ok(users.has('alice'));
  t.notOk(users.has('# created with htpasswd -B'));
  t.notOk(users.has('dave'));
});

t.test('inline users, with groups merged from auth.groups, sorted and unique', async (t) => {
  const dir = t.testdir({ htpasswd: `bob:${hash('bob-pw')}\n` });
  const users = await UserDirectory.open(
    options({
      htpasswd: join(dir, 'htpasswd'),
      users: [{ name: 'alice', password: hash('alice-pw'), groups: ['devs', 'admin'] }],
      groups: { admin: ['alice', 'bob'], ops: ['bob'], devs: ['alice'], ghosts: ['nobody'] },
    }),
  );
  t.same(await users.verify('alice', 'alice-pw'), { kind: 'user', name: 'alice', groups: ['admin', 'devs'] });
  t.same(await users.verify('bob', 'bob-pw'), { kind: 'user', name: 'bob', groups: ['admin', 'ops'] }, 'htpasswd users get auth.groups too');
  t.same(users.groupsOf('alice'), ['admin', 'devs']);
  t.same(users.groupsOf('nobody'), [], 'a group member that does not exist has no groups');
  t.notOk(users.has('nobody'));

  const copy = users.groupsOf('alice');
  copy.push('mutated');
  t.same(users.groupsOf('alice'), ['admin', 'devs'], 'callers get a copy');
});

t.test('wrong password, unknown user, wrong name case', async (t) => {
  const users = await UserDirectory.open(options({ users: [{ name: 'alice', password: hash('alice-pw'), groups: [] }] }));
  t.equal(await users.verify('alice', 'wrong'), undefined);
  t.equal(await users.verify('alice', ''), undefined);
  t.equal(await users.verify('mallory', 'alice-pw'), undefined);
  t.equal(await users.verify('Alice', 'alice-pw'), undefined, 'names are case-sensitive');
  t.ok(await users.verify('alice', 'alice-pw'), 'failures do not stick');
  t.equal(await users.verify('alice', 'wrong'), undefined, 'a remembered success does not admit another password');
});

t.test('a password longer than 1024 bytes is refused without bcrypt', async (t) => {
  // bcrypt reads only the first 72 bytes, so this hash matches both passwords below.
  const users = await UserDirectory.open(options({ users: [{ name: 'alice', password: hash('x'.repeat(72)), groups: [] }] }));
  t.ok(await users.verify('alice', 'x'.repeat(1024)));
  t.equal(await users.verify('alice', 'x'.repeat(1025)), undefined);
  t.equal(await users.verify('alice', 'x'.repeat(1023) + 'é'), undefined, '1024 characters but 1025 bytes');
});

t.test('a name both inline and in the file: the inline entry wins', async (t) => {
  const dir = t.testdir({ htpasswd: `alice:${hash('file-pw')}\n` });
  const users = await UserDirectory.open(
    options({ htpasswd: join(dir, 'htpasswd'), users: [{ name: 'alice', password: hash('inline-pw'), groups: ['devs'] }] }),
  );
  t.same(await users.verify('alice', 'inline-pw'), { kind: 'user', name: 'alice', groups: ['devs'] });
  t.equal(await users.verify('alice', 'file-pw'), undefined);
});

t.test('a malformed line is an error naming file and line, never the hash', async (t) => {
  const good = hash('pw');
  const cases: Array<[string, string, RegExp]> = [
    [`alice:${good}\nbob:$apr1$abcdefgh$0123456789abcdefghijkl\n`, ':2:', /user "bob".*bcrypt/],
    [`# c\n\nalice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n`, ':3:', /user "alice"/],
    [`alice:${good}\nsecret-password-pasted-here\n`, ':2:', /expected name:bcrypt-hash/],
    [`:${good}\n`, ':1:', /expected name:bcrypt-hash/],
    [`alice:${good.replace(/^\$2b\$04\$/, '$2b$03$')}\n`, ':1:', /cost 4-31/],
    [`alice:${good}x\n`, ':1:', /not a bcrypt hash/],
    [`alice:${good}\nalice:${good}\n`, ':2:', /already defined on line 1/],
  ];
  for (const [text, line, why] of cases) {
    const dir = t.testdir({ htpasswd: text });
    const file = join(dir, 'htpasswd');
    const err = await UserDirectory.open(options({ htpasswd: file })).then(
      () => undefined,
      (e: Error) => e,
    );
    t.ok(err, `rejected: ${why}`);
    if (!err) continue;
    t.ok(err.message.startsWith(`${file}${line}`), `names file and line: ${err.message}`);
    t.match(err.message, why);
    t.notMatch(err.message, /\$2[aby]\$\d|\$apr1\$|\{SHA\}|W6ph5|secret-password/, 'prints no hash or line content');
  }
});

t.test('a missing htpasswd file or an inline password that is not a bcrypt hash fails open(), naming the key apart from the message', async (t) => {
  const dir = t.testdir({});
  // The key is not in the message: whoever reports the error prefixes it once (with its line).
  await t.rejects(UserDirectory.open(options({ htpasswd: join(dir, 'nope') })), { key: 'auth.htpasswd', message: /^cannot read .*nope: ENOENT$/ });
  await t.rejects(UserDirectory.open(options({ users: [{ name: 'alice', password: 'plaintext', groups: [] }] })), {
    key: 'auth.users.0.password',
    message: /^user "alice": must be a bcrypt hash/,
  });
});

t.test('the file is re-read when it changes, at most once a second; the memo is cleared', async (t) => {
  const dir = t.testdir({ htpasswd: `alice:${hash('old-pw')}\nbob:${hash('bob-pw')}\n` });
  const file = join(dir, 'htpasswd');
  const clock = { ms: 1_000_000 };
  const errors: Error[] = [];
  const users = await UserDirectory.open(options({ htpasswd: file, now: () => clock.ms, onReloadError: (e) => errors.push(e) }));
  t.ok(await users.verify('alice', 'old-pw'), 'success remembered');

  writeFileSync(file, `alice:${hash('new-pw')}\ncarol:${hash('carol-pw')}\n`);
  touch(file, 10);
  clock.ms += 500;
  t.ok(await users.verify('alice', 'old-pw'), 'not looked at again within a second');
  t.notOk(users.has('carol'));

  clock.ms += 600;
  t.equal(await users.verify('alice', 'old-pw'), undefined, 'the changed password stops working at once: the memo was cleared');
  t.ok(await users.verify('alice', 'new-pw'));
  t.ok(await users.verify('carol', 'carol-pw'));
  t.equal(await users.verify('bob', 'bob-pw'), undefined, 'a removed user is gone');
  t.notOk(users.has('bob'));
  t.same(errors, []);
});

t.test('a broken or missing file keeps the last version that loaded and reports once', async (t) => {
  const dir = t.testdir({ htpasswd: `alice:${hash('alice-pw')}\n` });
  const file = join(dir, 'htpasswd');
  const clock = { ms: 1_000_000 };
  const errors: Error[] = [];
  const users = await UserDirectory.open(options({ htpasswd: file, now: () => clock.ms, onReloadError: (e) => errors.push(e) }));

  writeFileSync(file, `alice:not-a-hash\n`);
  touch(file, 10);
  clock.ms += 1001;
  t.ok(await users.verify('alice', 'alice-pw'), 'the previous version stays in force');
  clock.ms += 1001;
  t.ok(await users.verify('alice', 'alice-pw'));
  t.equal(errors.length, 1, 'reported once per version');
  t.match(errors[0]?.message, `${file}:1: user "alice"`);

  unlinkSync(file);
  clock.ms += 1001;
  t.ok(await users.verify('alice', 'alice-pw'));
  clock.ms += 1001;
  await users.verify('alice', 'alice-pw');
  t.equal(errors.length, 2);
  t.match(errors[1]?.message, /cannot read .*ENOENT/);

  writeFileSync(file, `alice:${hash('fixed-pw')}\n`);
  clock.ms += 1001;
  t.ok(await users.verify('alice', 'fixed-pw'), 'a fixed file loads');
  t.equal(await users.verify('alice', 'alice-pw'), undefined);
  t.equal(errors.length, 2);
});

t.test('concurrent checks share one look at the file', async (t) => {
  const dir = t.testdir({ htpasswd: `alice:${hash('a')}\n` });
  const file = join(dir, 'htpasswd');
  const clock = { ms: 1_000_000 };
  const users = await UserDirectory.open(options({ htpasswd: file, now: () => clock.ms }));
  writeFileSync(file, `alice:${hash('b')}\n`);
  touch(file, 10);
  clock.ms += 1001;
  const results = await Promise.all([users.verify('alice', 'a'), users.verify('alice', 'b'), users.verify('alice', 'b')]);
  t.same(
    results.map((r) => r !== undefined),
    [false, true, true],
    'every check waits for the reload in flight',
  );
});

t.test('bcrypt runs once per new success, for every failure and for unknown names', async (t) => {
  const real = await import('bcryptjs');
  const calls: string[] = [];
  const { UserDirectory: Counted } = await t.mockImport<typeof import('../../src/auth/users.js')>('../../src/auth/users.js', {
    bcryptjs: {
      ...real,
      compare: (password: string, against: string) => {
        calls.push(against);
        return real.compare(password, against);
      },
    },
  });
  const clock = { ms: 1_000_000 };
  const users = await Counted.open(
    options({
      users: [
        { name: 'alice', password: hash('pw'), groups: [] },
        { name: 'bob', password: hashSync('pw', 5), groups: [] },
        { name: 'carol', password: hashSync('pw', 5), groups: [] },
      ],
      now: () => clock.ms,
    }),
  );

  t.ok(await users.verify('alice', 'pw'));
  t.ok(await users.verify('alice', 'pw'));
  t.equal(calls.length, 1, 'the second success is remembered');
  clock.ms += 5 * 60_000 + 1;
  t.ok(await users.verify('alice', 'pw'));
  t.equal(calls.length, 2, 'after five minutes bcrypt runs again');

  await users.verify('alice', 'wrong');
  await users.verify('alice', 'wrong');
  t.equal(calls.length, 4, 'failures are not remembered');

  calls.length = 0;
  t.equal(await users.verify('mallory', 'pw'), undefined);
  t.equal(calls.length, 1, 'an unknown name costs one comparison too');
  t.match(calls[0], /^\$2b\$05\$/, 'at the most common cost among the users');
  t.equal(calls[0]?.length, 60, 'with a hash bcrypt does not reject by its length');

  calls.length = 0;
  t.equal(await users.verify('alice', 'x'.repeat(1025)), undefined);
  t.equal(calls.length, 0, 'an overlong password is refused without bcrypt');
});

t.test('a check that straddles a reload does not accept a password the new file dropped', async (t) => {
  const real = await import('bcryptjs');
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  let first = true;
  const { UserDirectory: Gated } = await t.mockImport<typeof import('../../src/auth/users.js')>('../../src/auth/users.js', {
    bcryptjs: {
      ...real,
      compare: async (password: string, against: string) => {
        const result = await real.compare(password, against);
        if (first) {
          first = false;
          await gate;
        }
        return result;
      },
    },
  });
  const dir = t.testdir({ htpasswd: `alice:${hash('old-pw')}\n` });
  const file = join(dir, 'htpasswd');
  const clock = { ms: 1_000_000 };
  const users = await Gated.open(options({ htpasswd: file, now: () => clock.ms }));

  const straddling = users.verify('alice', 'old-pw');
  writeFileSync(file, `alice:${hash('new-pw')}\n`);
  touch(file, 10);
  clock.ms += 1001;
  t.ok(await users.verify('alice', 'new-pw'), 'the reload happened');
  release();
  t.equal(await straddling, undefined, 'the old password matched the old hash, which is gone');
  t.equal(await users.verify('alice', 'old-pw'), undefined, 'and was not remembered');
});

t.test('has() starts the file check, so token-only callers see a removed user go', async (t) => {
  const dir = t.testdir({ htpasswd: `alice:${hash('a')}\nbob:${hash('b')}\n` });
  const file = join(dir, 'htpasswd');
  const clock = { ms: 1_000_000 };
  const users = await UserDirectory.open(options({ htpasswd: file, now: () => clock.ms, groups: { devs: ['bob'] } }));
  writeFileSync(file, `alice:${hash('a')}\n`);
  touch(file, 10);
  clock.ms += 1001;
  t.ok(users.has('bob'), 'this call only starts the look');
  for (let i = 0; i < 200 && users.has('bob'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.notOk(users.has('bob'), 'gone once the look has finished');
  t.same(users.groupsOf('bob'), []);
});
