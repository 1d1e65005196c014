// GET /internal/fills/<digest>: the growing bytes of a blob this node is filling, for the other
// nodes of the cluster (src/proxy/cluster-fills.ts), as they arrive, Range allowed. A failed fill
// cuts the connection, as it cuts every follower: never a short or wrong body. Only the nodes may
// ask: `Authorization: Bearer <cluster.secret>`, compared in constant time. 404 when no fill of the
// digest runs here (it has ended: the asking node looks at the lease and the store again).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { RegistryError } from '../../registry/errors.js';
import { parseDigest } from '../../registry/reference.js';
import type { BlobRead } from '../../registry/blob-service.js';
import { sendBlob } from './v2/blobs.js';

export interface InternalFillOptions {
  secret: string;
  /** The running fill of a digest on this node, or undefined. */
  localFill: (digest: string, rangeHeader: string | undefined) => Promise<BlobRead | undefined>;
}

export function registerInternalFillRoutes(app: FastifyInstance, opts: InternalFillOptions): void {
  // Hashes of equal length, so the comparison takes the same time whatever the header's length.
  const expected = createHash('sha256').update(`Bearer ${opts.secret}`).digest();
  app.get<{ Params: { digest: string } }>('/internal/fills/:digest', async (request, reply) => {
    const given = createHash('sha256').update(request.headers.authorization ?? '').digest();
    if (!timingSafeEqual(given, expected)) {
      throw new RegistryError('UNAUTHORIZED', 'the internal fill endpoint answers the nodes of this cluster only: Authorization: Bearer <cluster.secret>');
    }
    const { digest } = parseDigest(request.params.digest);
    const read = await opts.localFill(digest, request.headers.range);
    if (!read) throw new RegistryError('BLOB_UNKNOWN', `no fill of ${digest} runs on this node`, { detail: { digest } });
    return sendBlob(request, reply, digest, read);
  });
}
