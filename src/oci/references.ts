// What a manifest points at, as the registry, the metadata stores and the collector all see it.
// A leaf: it imports nothing of Wharf's.

export interface ManifestReference {
  digest: string;
  /** 'blob' for config and layers, 'manifest' for an index's children. */
  kind: 'blob' | 'manifest';
}
