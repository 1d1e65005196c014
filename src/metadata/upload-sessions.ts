// UploadSessions: the state of chunked uploads in progress (the bytes live in the BlobStore's upload
// area). Every driver passes test/contract/upload-sessions.contract.ts.

export interface UploadRecord {
  id: string;
  repo: string;
  /** Bytes received so far. */
  offset: number;
  startedAt: number;
  updatedAt: number;
}

export interface UploadSessions {
  createUpload(upload: UploadRecord): Promise<void>;
  getUpload(id: string): Promise<UploadRecord | undefined>;
  /** Sets the offset only if it still equals `expectedOffset`; false otherwise (a concurrent writer won). */
  advanceUpload(id: string, expectedOffset: number, newOffset: number): Promise<boolean>;
  deleteUpload(id: string): Promise<boolean>;

  // The collector's expiry of abandoned sessions (src/gc).
  /** Ids of upload sessions not updated since `before`, after the id `after`, in id order, at most `limit`. */
  staleUploads(before: number, after: string | undefined, limit: number): Promise<string[]>;
  /** Deletes the session if it is still not updated since `before`. */
  sweepUpload(id: string, before: number): Promise<boolean>;
}
