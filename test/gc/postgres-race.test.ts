// Pushes, tag moves and deletes racing a collector on another connection (race.test.ts), with the
// metadata on PostgreSQL, where the two really write at the same time.
import { useMetadataDriver } from './gc-setup.js';

useMetadataDriver('postgres');
await import('./race.test.js');
