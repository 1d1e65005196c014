// Runs the BlobStore contract suites against FsBlobStore, each subtest on its own temporary directory.
import { rmSync } from 'node:fs';
import t from 'tap';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { tempDir } from '../helpers/server.js';
import { blobStoreContract } from './blob-store.contract.js';
import { blobStoreAsideContract } from './blob-store-aside.contract.js';
import type { TestObject } from './contract-helpers.js';

const open = async (t: TestObject) => {
  const dir = tempDir('wharf-fs-blob-store-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { store: await FsBlobStore.open(dir), reopen: () => FsBlobStore.open(dir) };
};

void blobStoreContract(t, 'fs', open);
void blobStoreAsideContract(t, 'fs', open);
