// A local repository: everything is in this registry's own storage.
import type { BlobService } from './blob-service.js';
import type { DiscoveryService } from './discovery-service.js';
import type { ManifestService } from './manifest-service.js';
import type { RepositoryReader } from './repository.js';
import type { Page } from '../oci/page.js';

export class LocalRepository implements RepositoryReader {
  constructor(
    readonly repo: string,
    private readonly services: { blobs: BlobService; manifests: ManifestService; discovery: DiscoveryService },
  ) {}

  manifest(reference: string, opts: { head?: boolean }) {
    return this.services.manifests.get(this.repo, reference, opts);
  }

  blob(digest: string, opts: { rangeHeader?: string; head?: boolean }) {
    return this.services.blobs.read(this.repo, digest, opts);
  }

  tags(page: Page) {
    return this.services.discovery.tags(this.repo, page);
  }

  async referrers(digest: string, artifactType?: string) {
    return { ...(await this.services.discovery.referrers(this.repo, digest, artifactType)), filtered: artifactType !== undefined };
  }
}
