// The rows of the metadata tables as both drivers read them back (the same columns in SQLite and
// PostgreSQL, see migrations/), and the records the interfaces return. Blob rows differ (SQLite's
// 0/1 flag, PostgreSQL's boolean) and stay with each driver.
import type { ManifestRecord } from './registry-metadata.js';
import type { UploadRecord } from './upload-sessions.js';

export interface ManifestRow {
  repo: string;
  digest: string;
  media_type: string;
  size: number;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
  created_at: number;
  last_access_at: number;
}

export function toManifest(row: ManifestRow): ManifestRecord {
  return {
    repo: row.repo,
    digest: row.digest,
    mediaType: row.media_type,
    size: row.size,
    subject: row.subject,
    artifactType: row.artifact_type,
    annotations: row.annotations === null ? null : (JSON.parse(row.annotations) as Record<string, string>),
    createdAt: row.created_at,
    lastAccessAt: row.last_access_at,
  };
}

export interface UploadRow {
  id: string;
  repo: string;
  offset: number;
  started_at: number;
  updated_at: number;
}

export function toUpload(row: UploadRow): UploadRecord {
  return { id: row.id, repo: row.repo, offset: row.offset, startedAt: row.started_at, updatedAt: row.updated_at };
}
