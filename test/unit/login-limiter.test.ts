import t from 'tap';
import { addressKey, LoginLimiter, type LoginAttempt, type LoginRefusal } from '../../src/auth/login-limiter.js';

function setup(perUser = 3, perAddress = 5, windowMs = 60_000) {
  const clock = { ms: 1_000_000 };
  const limiter = new LoginLimiter({ perUser, perAddress, windowMs, now: () => clock.ms });
  return { clock, limiter };
}

/** `times` attempts with a wrong password; each must have been let through. */
function fail(t: Tap, limiter: LoginLimiter, times: number, user: string, address: string, knownUser = true) {
  for (let i = 0; i < times; i++) t.ok(limiter.attempt(user, address, { knownUser }).ok, `${user} from ${address} may try (${i + 1})`);
}

/** The refusal of an attempt (undefined, and the attempt counted as a failure, when it may go ahead). */
function refused(limiter: LoginLimiter, user: string, address: string, knownUser = true): Omit<LoginRefusal, 'ok'> | undefined {
  const a = limiter.attempt(user, address, { knownUser });
  return a.ok ? undefined : { retryAfterSeconds: a.retryAfterSeconds, reason: a.reason };
}

type Tap = Pick<typeof t, 'ok'>;

t.test('a user name is refused after perUser failures until the window closes', async (t) => {
  const { clock, limiter } = setup(3, 100, 60_000);
  fail(t, limiter, 2, 'alice', '10.0.0.1');
  fail(t, limiter, 1, 'alice', '10.0.0.1');
  t.same(refused(limiter, 'alice', '10.0.0.1'), { retryAfterSeconds: 60, reason: 'user' });
  t.same(refused(limiter, 'alice', '10.0.0.2'), { retryAfterSeconds: 60, reason: 'user' }, 'the name is refused from every address');
  clock.ms += 20_500;
  t.same(refused(limiter, 'alice', '10.0.0.1'), { retryAfterSeconds: 40, reason: 'user' }, 'rounded up');
  clock.ms += 39_000;
  t.same(refused(limiter, 'alice', '10.0.0.1'), { retryAfterSeconds: 1, reason: 'user' }, 'never below 1 while refused');
  clock.ms += 500;
  t.equal(refused(limiter, 'alice', '10.0.0.1'), undefined, 'the window has passed; a new one starts with this attempt');
  fail(t, limiter, 1, 'alice', '10.0.0.1');
  t.equal(refused(limiter, 'alice', '10.0.0.1'), undefined, 'three in the new window: the third may still go ahead');
  t.ok(refused(limiter, 'alice', '10.0.0.1'), 'the fourth may not');
});

t.test('attempts are counted before the password is checked: 40 concurrent wrong passwords against a limit of 10 try 10', async (t) => {
  const { limiter } = setup(10, 1000);
  // 40 attempts begun before any password check has finished (none is settled yet).
  const attempts = Array.from({ length: 40 }, () => limiter.attempt('bob', '10.0.0.1', { knownUser: true }));
  t.equal(attempts.filter((a) => a.ok).length, 10, 'ten go ahead to the password check');
  t.equal(attempts.filter((a) => !a.ok).length, 30, 'thirty are refused before it');
});

t.test('a success hands its attempt back and clears the name, not the address', async (t) => {
  const { limiter } = setup(3, 4);
  fail(t, limiter, 2, 'alice', '10.0.0.1');
  (limiter.attempt('alice', '10.0.0.1', { knownUser: true }) as LoginAttempt).succeeded();
  fail(t, limiter, 2, 'alice', '10.0.0.2');
  t.equal(refused(limiter, 'alice', '10.0.0.3'), undefined, 'the count restarted after the success');
  t.ok(refused(limiter, 'alice', '10.0.0.3'), 'three failures since the success');

  // 10.0.0.1: alice's two failures stay, the success was handed back; two more make four.
  fail(t, limiter, 2, 'carol', '10.0.0.1');
  t.same(refused(limiter, 'mallory', '10.0.0.1', false), { retryAfterSeconds: 60, reason: 'address' }, 'the address kept its failures');
});

t.test('an address over perAddress is throttled, not blocked: made-up names are refused, a user with the right password gets in', async (t) => {
  const { limiter } = setup(10, 30, 300_000);
  for (let i = 0; i < 30; i++) fail(t, limiter, 1, `made-up-${i}`, '192.0.2.7', false);
  t.same(refused(limiter, 'made-up-99', '192.0.2.7', false), { retryAfterSeconds: 300, reason: 'address' }, 'no password check for a name that is not a user');
  const bob = limiter.attempt('bob', '192.0.2.7', { knownUser: true });
  t.ok(bob.ok, 'bob may try');
  if (bob.ok) bob.succeeded();
  for (let i = 0; i < 5; i++) {
    const again = limiter.attempt('bob', '192.0.2.7', { knownUser: true });
    t.ok(again.ok, `bob, having logged in from this address, logs in again at once (${i + 1})`);
    if (again.ok) again.succeeded();
  }
  t.equal(refused(limiter, 'made-up-0', '192.0.2.8', false), undefined, 'another address is not affected');
});

t.test('at a throttled address each real user name gets a typo and a retry at once, then one attempt per windowMs / perUser', async (t) => {
  const { clock, limiter } = setup(10, 2, 60_000);
  fail(t, limiter, 2, 'ghost', '192.0.2.7', false);
  for (let i = 1; i <= 3; i++) t.equal(refused(limiter, 'alice', '192.0.2.7'), undefined, `attempt ${i} goes ahead (and fails)`);
  t.same(refused(limiter, 'alice', '192.0.2.7'), { retryAfterSeconds: 6, reason: 'address' }, 'the fourth waits 60 s / 10');
  t.equal(refused(limiter, 'bob', '192.0.2.7'), undefined, 'another real name has its own allowance');
  clock.ms += 5_999;
  t.same(refused(limiter, 'alice', '192.0.2.7'), { retryAfterSeconds: 1, reason: 'address' }, 'not before the pace is up');
  clock.ms += 1;
  t.equal(refused(limiter, 'alice', '192.0.2.7'), undefined, 'after the pace, alice may try again');
  t.ok(refused(limiter, 'alice', '192.0.2.7'), 'but only once per pace');
  clock.ms += 3 * 6_000;
  for (let i = 1; i <= 3; i++) t.equal(refused(limiter, 'alice', '192.0.2.7'), undefined, `refilled after three paces: attempt ${i}`);
  t.same(refused(limiter, 'alice', '192.0.2.7'), { retryAfterSeconds: 6, reason: 'address' }, 'never more than three at once');
});

t.test('at a throttled address the per-name limit still holds', async (t) => {
  const { clock, limiter } = setup(3, 2, 60_000);
  fail(t, limiter, 2, 'ghost', '192.0.2.7', false);
  for (let i = 1; i <= 3; i++) t.equal(refused(limiter, 'alice', '192.0.2.7'), undefined, `attempt ${i}`);
  t.same(refused(limiter, 'alice', '192.0.2.7'), { retryAfterSeconds: 60, reason: 'user' }, 'three failures: the name waits out its window');
  clock.ms += 60_000;
  t.equal(refused(limiter, 'ghost', '192.0.2.7', false), undefined, 'the address window has closed');
});

t.test('attempts refused while blocked are not counted and do not extend the block', async (t) => {
  const { clock, limiter } = setup(2, 100, 10_000);
  fail(t, limiter, 2, 'alice', '10.0.0.1');
  clock.ms += 5_000;
  for (let i = 0; i < 3; i++) t.ok(refused(limiter, 'alice', '10.0.0.1'));
  clock.ms += 5_000;
  t.equal(refused(limiter, 'alice', '10.0.0.1'), undefined);
});

t.test('a refused name does not refuse other names, from any address', async (t) => {
  const { limiter } = setup(2, 100);
  fail(t, limiter, 2, 'alice', '10.0.0.1');
  t.ok(refused(limiter, 'alice', '10.0.0.9'));
  t.equal(refused(limiter, 'bob', '10.0.0.9'), undefined);
  t.equal(refused(limiter, 'bob', '10.0.0.1'), undefined, 'nor from the same address while it is under its own limit');
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
  fail(t, limiter, 1, 'a', '2001:db8:1:2::1', false);
  fail(t, limiter, 1, 'b', '2001:db8:1:2::2', false);
  t.ok(refused(limiter, 'c', '2001:db8:1:2::3', false), 'same /64');
  t.equal(refused(limiter, 'c', '2001:db8:1:3::1', false), undefined, 'another /64');
});

t.test('memory is bounded: the least recently used entries go first', async (t) => {
  const clock = { ms: 0 };
  const limiter = new LoginLimiter({ perUser: 1, perAddress: 1000, windowMs: 60_000, maxEntries: 3, now: () => clock.ms });
  for (const name of ['a', 'b', 'c', 'd']) fail(t, limiter, 1, name, '10.0.0.1');
  t.equal(refused(limiter, 'a', '10.0.0.1'), undefined, 'evicted');
  t.ok(refused(limiter, 'd', '10.0.0.1'));
});

t.test('options are checked', async (t) => {
  t.throws(() => new LoginLimiter({ perUser: 0, perAddress: 1, windowMs: 1000 }), RangeError);
  t.throws(() => new LoginLimiter({ perUser: 1, perAddress: 1, windowMs: 0 }), RangeError);
});
