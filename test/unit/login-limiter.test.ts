import t from 'tap';
import { addressKey, LoginLimiter } from '../../src/auth/login-limiter.js';

function setup(perUser = 3, perAddress = 5, windowMs = 60_000) {
  const clock = { ms: 1_000_000 };
  const limiter = new LoginLimiter({ perUser, perAddress, windowMs, now: () => clock.ms });
  return { clock, limiter };
}

function fail(limiter: LoginLimiter, times: number, user: string | undefined, address: string) {
  for (let i = 0; i < times; i++) limiter.failed(user, address);
}

t.test('a user name is blocked after perUser failures until the window closes', async (t) => {
  const { clock, limiter } = setup(3, 100, 60_000);
  fail(limiter, 2, 'alice', '10.0.0.1');
  t.equal(limiter.blocked('alice', '10.0.0.1'), undefined, 'below the limit');
  limiter.failed('alice', '10.0.0.1');
  t.same(limiter.blocked('alice', '10.0.0.1'), { retryAfterSeconds: 60 });
  t.same(limiter.blocked('alice', '10.0.0.2'), { retryAfterSeconds: 60 }, 'the name is blocked from every address');
  clock.ms += 20_500;
  t.same(limiter.blocked('alice', '10.0.0.1'), { retryAfterSeconds: 40 }, 'rounded up');
  clock.ms += 39_000;
  t.same(limiter.blocked('alice', '10.0.0.1'), { retryAfterSeconds: 1 }, 'never below 1 while blocked');
  clock.ms += 500;
  t.equal(limiter.blocked('alice', '10.0.0.1'), undefined, 'the window has passed');
  limiter.failed('alice', '10.0.0.1');
  t.equal(limiter.blocked('alice', '10.0.0.1'), undefined, 'a new window starts from zero');
});

t.test('the window opens at the first failure', async (t) => {
  const { clock, limiter } = setup(3, 100, 60_000);
  limiter.failed('alice', '10.0.0.1');
  clock.ms += 50_000;
  fail(limiter, 2, 'alice', '10.0.0.1');
  t.same(limiter.blocked('alice', '10.0.0.1'), { retryAfterSeconds: 10 });
  clock.ms += 10_000;
  t.equal(limiter.blocked('alice', '10.0.0.1'), undefined);
});

t.test('an address is blocked after perAddress failures, whatever the names', async (t) => {
  const { clock, limiter } = setup(3, 5, 30_000);
  for (const name of ['a', 'b', 'c', 'd']) limiter.failed(name, '192.0.2.7');
  t.equal(limiter.blocked('e', '192.0.2.7'), undefined);
  limiter.failed(undefined, '192.0.2.7');
  t.same(limiter.blocked('e', '192.0.2.7'), { retryAfterSeconds: 30 }, 'a failure without a name counts against the address');
  t.same(limiter.blocked(undefined, '192.0.2.7'), { retryAfterSeconds: 30 });
  t.equal(limiter.blocked('e', '192.0.2.8'), undefined, 'the same name from another address may go ahead');
  t.equal(limiter.blocked('a', '192.0.2.8'), undefined, 'one failure per name is below perUser');
  clock.ms += 30_000;
  t.equal(limiter.blocked('e', '192.0.2.7'), undefined);
});

t.test('a blocked name does not block other names, from another address', async (t) => {
  const { limiter } = setup(2, 100);
  fail(limiter, 2, 'alice', '10.0.0.1');
  t.ok(limiter.blocked('alice', '10.0.0.9'));
  t.equal(limiter.blocked('bob', '10.0.0.9'), undefined);
  t.equal(limiter.blocked('bob', '10.0.0.1'), undefined, 'nor from the same address while it is under its own limit');
});

t.test('Retry-After is the later of the name and the address blocks', async (t) => {
  const { clock, limiter } = setup(2, 4, 60_000);
  fail(limiter, 2, undefined, '10.0.0.1');
  clock.ms += 30_000;
  fail(limiter, 2, 'alice', '10.0.0.1');
  t.same(limiter.blocked('alice', '10.0.0.1'), { retryAfterSeconds: 60 }, 'name block ends after the address block');
  clock.ms += 31_000;
  t.same(limiter.blocked('alice', '10.0.0.2'), { retryAfterSeconds: 29 });
  t.equal(limiter.blocked('bob', '10.0.0.1'), undefined, 'the address window has closed');
});

t.test('failures recorded while blocked do not extend the block', async (t) => {
  const { clock, limiter } = setup(2, 100, 10_000);
  fail(limiter, 2, 'alice', '10.0.0.1');
  clock.ms += 5_000;
  fail(limiter, 3, 'alice', '10.0.0.1');
  t.same(limiter.blocked('alice', '10.0.0.1'), { retryAfterSeconds: 5 });
  clock.ms += 5_000;
  t.equal(limiter.blocked('alice', '10.0.0.1'), undefined);
});

t.test('succeeded() clears the name, not the address', async (t) => {
  const { limiter } = setup(3, 4);
  fail(limiter, 2, 'alice', '10.0.0.1');
  limiter.succeeded('alice', '10.0.0.1');
  limiter.failed('alice', '10.0.0.1');
  fail(limiter, 1, 'alice', '10.0.0.2');
  t.equal(limiter.blocked('alice', '10.0.0.3'), undefined, 'the count restarted after the success');
  limiter.failed('alice', '10.0.0.3');
  t.ok(limiter.blocked('alice', '10.0.0.3'), 'three failures since the success');

  limiter.succeeded('alice', '10.0.0.1');
  fail(limiter, 1, 'bob', '10.0.0.1');
  t.ok(limiter.blocked('carol', '10.0.0.1'), 'the address kept its four failures');
  t.equal(limiter.blocked('alice', '10.0.0.2'), undefined);
});

t.test('IPv6 addresses count per /64; IPv4-mapped ones as IPv4', async (t) => {
  t.equal(addressKey('10.1.2.3'), '10.1.2.3');
  t.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(addressKey('::FFFF:a01:203'), '10.1.2.3');
  t.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(addressKey('::1'), '0:0:0:0::/64');
  t.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  t.equal(addressKey('unix-socket'), 'unix-socket', 'anything else is its own key');

  const { limiter } = setup(100, 2);
  limiter.failed('a', '2001:db8:1:2::1');
  limiter.failed('b', '2001:db8:1:2::2');
  t.ok(limiter.blocked('c', '2001:db8:1:2::3'), 'same /64');
  t.equal(limiter.blocked('c', '2001:db8:1:3::1'), undefined, 'another /64');
});

t.test('memory is bounded: the least recently used entries go first', async (t) => {
  const clock = { ms: 0 };
  const limiter = new LoginLimiter({ perUser: 1, perAddress: 1000, windowMs: 60_000, maxEntries: 3, now: () => clock.ms });
  limiter.failed('a', '10.0.0.1');
  for (const name of ['b', 'c', 'd']) limiter.failed(name, '10.0.0.1');
  t.equal(limiter.blocked('a', '10.0.0.1'), undefined, 'evicted');
  t.ok(limiter.blocked('d', '10.0.0.1'));
});

t.test('options are checked', async (t) => {
  t.throws(() => new LoginLimiter({ perUser: 0, perAddress: 1, windowMs: 1000 }), RangeError);
  t.throws(() => new LoginLimiter({ perUser: 1, perAddress: 1, windowMs: 0 }), RangeError);
});
