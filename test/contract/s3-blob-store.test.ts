// Runs the BlobStore contract suites against S3BlobStore on a real S3 server: Ceph's RADOS Gateway
// (test/helpers/ceph.ts). Each subtest has its own prefix in one bucket and its own scratch directory;
// reopen() is another process on another node: the same bucket and prefix, another scratch directory.
// Parts are 64 KiB (radosgw's minimum lowered for the test) so that blobs of a few hundred KiB span
// several parts: resumed sessions, cut-backs and commits cross part boundaries.
import { rmSync } from 'node:fs';
import t from 'tap';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../src/storage/s3-blob-store.js';
import { startCeph } from '../helpers/ceph.js';
import { tempDir } from '../helpers/server.js';
import { blobStoreContract } from './blob-store.contract.js';
import { blobStoreAsideContract } from './blob-store-aside.contract.js';
import type { TestObject } from './contract-helpers.js';

const rgw = await startCeph(t, { minPartSize: 16 * 1024 });
t.comment(`ceph with radosgw answered S3 after ${rgw.startMs} ms`);
const client = rgw.client();
await client.send(new CreateBucketCommand({ Bucket: 'contract' }));

let runs = 0;
const open = async (t: TestObject) => {
  const prefix = `run-${++runs}`;
  const scratch = tempDir('wharf-s3-scratch-');
  const elsewhere = tempDir('wharf-s3-scratch-');
  t.teardown(() => {
    rmSync(scratch, { recursive: true, force: true });
    rmSync(elsewhere, { recursive: true, force: true });
  });
  const make = (dir: string) => S3BlobStore.open({ client, bucket: 'contract', prefix, scratch: dir, partSize: 64 * 1024 });
  return { store: await make(scratch), reopen: () => make(elsewhere) };
};

void blobStoreContract(t, 's3 on radosgw', open);
void blobStoreAsideContract(t, 's3 on radosgw', open);
