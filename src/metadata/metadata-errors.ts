// What can go wrong in a metadata store, said in the metadata layer's own terms. The registry maps
// each to its OCI code once (asRegistryError in src/registry/errors.ts).

/**
 * The metadata database cannot be reached or did not answer in time (a networked driver: the server
 * is down, restarting, or refuses connections). Nothing was written; the same request succeeds once
 * the database is back, so it is answered as 503 UNAVAILABLE, not as a fault of the registry.
 */
export class MetadataUnavailableError extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts);
    this.name = 'MetadataUnavailableError';
  }
}
