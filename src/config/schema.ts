// The one configuration schema: validation, defaults and the TypeScript type come from it.
// Keys here are a public contract (tools outside the project write them): rename nothing.
import { Type, type Static } from '@sinclair/typebox';

const HostPort = Type.String({
  pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]*):[0-9]{1,5}$',
  description: 'HOST:PORT to listen on; an empty host or 0.0.0.0 means every IPv4 address, [::] every address',
});

export const ConfigSchema = Type.Object(
  {
    listen: Type.String({ ...HostPort, default: '0.0.0.0:5000' }),
    storage: Type.Object(
      {
        path: Type.String({
          minLength: 1,
          default: './data',
          description:
            'data directory: blobs, uploads and the metadata database; a relative path is relative to the current directory of the wharf process, not to the config file',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'log level' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    uploads: Type.Object(
      {
        chunkMinLength: Type.Integer({
          minimum: 0,
          default: 0,
          description: 'OCI-Chunk-Min-Length announced to clients for chunked uploads (0 = no minimum)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    shutdownTimeoutMs: Type.Integer({
      minimum: 0,
      default: 30000,
      description: 'on SIGTERM, how long in-flight requests may take before the process exits anyway',
    }),
  },
  { additionalProperties: false, $id: 'https://wharf.dev/schema/config.json', title: 'Wharf configuration' },
);

export type WharfConfig = Static<typeof ConfigSchema>;
