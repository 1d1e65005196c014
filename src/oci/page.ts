// A page of a listing (distribution-spec: `n` and `last` on the catalog and tag lists).
// A leaf: it imports nothing of Wharf's.

export interface Page {
  /** Exclusive lower bound, lexical order (the `last` query parameter). */
  last?: string;
  /** Maximum number of entries; undefined = all. */
  n?: number;
}
