// Response headers of the distribution API, in one place.
export const API_VERSION_HEADER = 'docker-distribution-api-version';
export const API_VERSION = 'registry/2.0';
export const CONTENT_DIGEST = 'docker-content-digest';
export const UPLOAD_UUID = 'docker-upload-uuid';
export const CHUNK_MIN_LENGTH = 'oci-chunk-min-length';
export const OCI_SUBJECT = 'oci-subject';
export const OCI_TAG = 'oci-tag';
export const OCI_FILTERS_APPLIED = 'oci-filters-applied';
