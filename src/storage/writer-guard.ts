// The life of a BlobWriter, the same for every driver: writes until it is committed or cancelled; a
// commit verifies the bytes once (cut to the size the caller vouches for, hashed unless the caller
// hashed them as they streamed), and may be repeated under the same digest (placing the blob again
// after a collector set it aside), never under another; nothing after cancel().
import type { DigestAlgorithm } from '../oci/digest.js';
import { checkDigest } from '../oci/digest.js';
import { DigestMismatchError } from './storage-errors.js';

/** What a driver does for the first commit's verification. */
export interface WriterBytes {
  /** Ends the writes under way; cuts the bytes to `size` when given and different. */
  settle(size: number | undefined): Promise<void>;
  /** The digest of the bytes written, in `algorithm`. */
  hash(algorithm: DigestAlgorithm): Promise<string>;
}

export class WriterGuard {
  private committedAs: string | undefined;
  private cancelledAt = false;

  constructor(private readonly id: string) {}

  /** The digest the bytes were verified under, once committed. */
  get committed(): string | undefined {
    return this.committedAs;
  }

  get cancelled(): boolean {
    return this.cancelledAt;
  }

  /** Throws once the writer is committed or cancelled. */
  writable(): void {
    if (this.cancelledAt || this.committedAs !== undefined) {
      throw new Error(`blob writer ${this.id} is ${this.cancelledAt ? 'cancelled' : 'committed'}: no more writes`);
    }
  }

  /** Marks the writer cancelled; false when it was already. */
  cancel(): boolean {
    const first = !this.cancelledAt;
    this.cancelledAt = true;
    return first;
  }

  /**
   * The checks of BlobWriter.commit before the bytes are placed under `digest`: refused after
   * cancel() or under a digest other than an earlier commit's; the first time, the bytes are settled
   * and their digest (`opts.knownDigest` when in the same algorithm, else hashed) must be `digest`.
   */
  async verify(digest: string, opts: { knownDigest?: string; size?: number }, bytes: WriterBytes): Promise<void> {
    if (this.cancelledAt) throw new Error(`blob writer ${this.id} was cancelled`);
    if (this.committedAs !== undefined && this.committedAs !== digest) {
      throw new Error(`blob writer ${this.id} is committed as ${this.committedAs}, not ${digest}`);
    }
    if (this.committedAs !== undefined) return;
    const { algorithm } = checkDigest(digest);
    await bytes.settle(opts.size);
    const known = opts.knownDigest;
    const actual = known !== undefined && checkDigest(known).algorithm === algorithm ? known : await bytes.hash(algorithm);
    if (actual !== digest) throw new DigestMismatchError(`content has digest ${actual}, not the declared ${digest}`, digest, actual);
    this.committedAs = digest;
  }
}
