// The collector's liveness rules (collector.test.ts) with the metadata on PostgreSQL.
import { useMetadataDriver } from './gc-setup.js';

useMetadataDriver('postgres');
await import('./collector.test.js');
