// What every contract suite of test/contract/ shares: the tap test type and digests made from small numbers.
import type t from 'tap';

type Tap = typeof t;
/** A tap test object (the root `t` or a subtest's). */
export type TestObject = Parameters<Parameters<Tap['test']>[0]>[0] | Tap;

/** A syntactically valid sha256 digest made from a small number, so tests read as `dg(1)`, `dg(2)`. */
export function dg(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}
