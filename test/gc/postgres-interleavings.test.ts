// The collector's forced race windows (interleavings.test.ts) with the metadata on PostgreSQL.
import { useMetadataDriver } from './gc-setup.js';

useMetadataDriver('postgres');
await import('./interleavings.test.js');
