// A BlobWriter with some methods replaced (a full disk, a slow or failing disk, a collector acting
// between two steps); everything else is the wrapped writer's.
import type { BlobWriter } from '../../src/storage/blob-store.js';

export function wrapWriter(w: BlobWriter, over: Partial<Pick<BlobWriter, 'write' | 'append' | 'commit' | 'cancel'>>): BlobWriter {
  return {
    get id() {
      return w.id;
    },
    get size() {
      return w.size;
    },
    write: over.write ?? ((buffers) => w.write(buffers)),
    append: over.append ?? ((source, opts) => w.append(source, opts)),
    truncate: (size) => w.truncate(size),
    reader: () => w.reader(),
    read: (end) => w.read(end),
    commit: over.commit ?? ((digest, opts) => w.commit(digest, opts)),
    cancel: over.cancel ?? (() => w.cancel()),
  };
}
