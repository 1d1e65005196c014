// The one configuration schema: validation, defaults and the TypeScript types come from it.
// Keys here are a public contract (tools outside the project write them): rename nothing.
//
// Two forms: the input (YAML, WHARF_*, flags; what print-schema prints) writes durations and sizes
// as strings ('30s', '10GiB'); the configuration the loader returns carries them as numbers,
// milliseconds and bytes, converted once by the schema's transforms (parsed.ts). Nothing outside
// config/ parses a configured duration or size.
import { Type, type Static, type StaticDecode, type StringOptions } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { DURATION_PATTERN, notADuration, parseDuration } from './duration.js';
import { SIZE_PATTERN, parseSize } from './size.js';

const HostPort = Type.String({
  pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]*):[0-9]{1,5}$',
  description: 'HOST:PORT to listen on; an empty host or 0.0.0.0 means every IPv4 address, [::] every address',
});

// Durations and sizes use the patterns of their parsers: the loader's messages name them by these.
/** Written as a string with a unit; loaded as milliseconds. */
const durationOf = (options: StringOptions) =>
  Type.Transform(Type.String({ ...options, pattern: DURATION_PATTERN }))
    .Decode((text) => parseDuration(text))
    .Encode((ms) => `${ms}ms`);
const Duration = (def: string, description: string) =>
  durationOf({ default: def, description: `${description} (a duration: 500ms, 30s, 5m, 2h, 1d)` });

/** A duration given outside the configuration (the token API's expiresIn, `wharf token create --expires`):
 *  the configuration's own form and decoder. */
export const DurationText = durationOf({ description: 'a duration: 500ms, 30s, 5m, 2h, 1d' });

/** Milliseconds of a DurationText; throws `"3w" is not a duration such as ...` for anything else. */
export function decodeDuration(text: string): number {
  if (!Value.Check(DurationText, text)) throw notADuration(text);
  return Value.Decode(DurationText, text);
}

/** Written as bytes, or a string with a unit; loaded as bytes. */
const Size = (def: number | string, description: string) =>
  Type.Transform(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: SIZE_PATTERN })], { default: def, description }))
    .Decode((value) => parseSize(value))
    .Encode((bytes) => bytes);

const EnvName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'environment variable holding the secret' });

export const S3Schema = Type.Object(
  {
    endpoint: Type.Optional(
      Type.String({ pattern: '^https?://[^/?#\\s]+/?$', description: 'URL of the S3 API (Ceph RADOS Gateway, MinIO, ...); default: AWS S3 in the region' }),
    ),
    region: Type.String({ minLength: 1, default: 'us-east-1', description: 'region the requests are signed for' }),
    bucket: Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', description: 'the bucket, which must exist: 3-63 lowercase letters, digits, dots and hyphens, a letter or digit at each end' }),
    prefix: Type.String({
      pattern: '^([A-Za-z0-9!_.*()\'-]+(/[A-Za-z0-9!_.*()\'-]+)*)?$',
      default: '',
      description: 'keys live under <prefix>/ (blobs/, uploads/, trash/); empty: at the top of the bucket',
    }),
    forcePathStyle: Type.Boolean({ default: false, description: 'address the bucket in the path (endpoint/bucket/key), as Ceph RGW and MinIO need without wildcard DNS' }),
    accessKeyId: Type.Optional(Type.String({ minLength: 1, description: 'access key; without it, credentials come from the AWS SDK chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles)' })),
    secretAccessKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the secret key of accessKeyId (trailing newline ignored)' })),
    secretAccessKeyEnv: Type.Optional(EnvName),
    redirect: Type.Boolean({
      default: false,
      description: 'answer blob GETs allowed by access control with a 307 to a presigned URL of the object, so clients download from the bucket directly (they must reach the endpoint)',
    }),
    presignExpiry: Duration(
      '15m',
      'how long a presigned blob URL (redirect) stays valid: long enough to start a large download; at most 7d, the longest S3 signs for',
    ),
  },
  {
    additionalProperties: false,
    description: 'keep blobs in an S3-compatible bucket instead of under storage.path (several servers may share one bucket)',
  },
);

export const UpstreamSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'a short name for logs, metrics and errors' }),
    url: Type.String({ pattern: '^https?://[^/?#\\s]+/?$', description: 'base URL of the upstream registry API (http or https), e.g. https://registry-1.docker.io' }),
    registry: Type.String({
      pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$',
      description: 'the registry host this upstream stands for (docker.io, ghcr.io, ...): matched against ?ns= and as a first path component',
    }),
    prefix: Type.Optional(
      Type.String({ pattern: '^[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*$', description: 'another first path component that routes to this upstream, e.g. hub' }),
    ),
    default: Type.Boolean({ default: false, description: 'serve names that match nothing else (as Docker registry-mirrors sends them); at most one upstream' }),
    username: Type.Optional(Type.String({ minLength: 1, description: 'account Wharf signs in to the upstream with (a Docker Hub account, a robot account), with password, passwordFile or passwordEnv' })),
    password: Type.Optional(Type.String({ minLength: 1, description: 'prefer passwordFile or passwordEnv to keep secrets out of the file' })),
    passwordFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the password (trailing newline ignored)' })),
    passwordEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'environment variable holding the password' })),
    allowedRealms: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'extra token realms ("host" for any port, or "host:port") that may receive our credentials, besides the upstream origin and realms on its registrable domain (on its port or the default one)',
    }),
    tls: Type.Object(
      {
        ca: Type.Optional(
          Type.String({ minLength: 1, description: 'PEM file of the certificate authorities that sign this upstream\'s certificate (a private CA), trusted instead of the system\'s; read at start-up' }),
        ),
        insecureSkipVerify: Type.Boolean({
          default: false,
          description: 'do not verify the upstream\'s certificate at all (anyone on the path can read and change the traffic): for a test setup, prefer ca',
        }),
      },
      { additionalProperties: false, default: {}, description: 'how the upstream\'s HTTPS certificate is verified (an https url only)' },
    ),
    tagTTL: Duration('5m', 'how long a tag resolved from this upstream is served without asking it again'),
    listTTL: Duration('30s', 'how long upstream tag lists and referrers are cached'),
    timeouts: Type.Object(
      {
        connect: Duration('10s', 'TCP/TLS connect timeout'),
        headers: Duration('30s', 'time to receive response headers'),
        bodyIdle: Duration('30s', 'longest pause between two body chunks'),
        minRate: Size(
          '1KiB',
          'slowest blob download worth waiting for, in bytes per second averaged over minRateWindow (a trickle never trips bodyIdle); 0 turns it off',
        ),
        minRateWindow: Duration('30s', 'the window minRate is averaged over'),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);


const ActionPattern = Type.Union([Type.Literal('pull'), Type.Literal('push'), Type.Literal('delete'), Type.Literal('*')]);

export const PolicyRuleSchema = Type.Object(
  {
    repositories: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
      minItems: 1,
      description: 'canonical repository names (README "Authentication"): `*` matches within one path component, `**` across components (a lone `**` matches every repository), `{user}` the caller\'s user name',
    }),
    subjects: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
      minItems: 1,
      description: 'user names, `group:<name>`, `anonymous` (no credentials), `authenticated` (any signed-in user) or `owner` (the first user who pushed the repository)',
    }),
    actions: Type.Array(ActionPattern, { minItems: 1, description: 'pull, push, delete, or `*` for all three' }),
  },
  { additionalProperties: false },
);

export const AuthUserSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$', description: 'the user name clients sign in with' }),
    password: Type.String({ pattern: '^\\$2[aby]\\$[0-9]{2}\\$[./A-Za-z0-9]{53}$', description: 'a bcrypt hash (htpasswd -nbB user pass), never the password itself' }),
    groups: Type.Array(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }), { default: [], description: 'the groups the user is in (policies name them as group:<name>)' }),
  },
  { additionalProperties: false },
);

export const AuthSchema = Type.Object(
  {
    htpasswd: Type.Optional(Type.String({ minLength: 1, description: 'path of an htpasswd file with bcrypt hashes (htpasswd -B); re-read when it changes' })),
    users: Type.Array(AuthUserSchema, { default: [], description: 'users defined inline, with bcrypt password hashes and groups' }),
    groups: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }), Type.Array(Type.String({ minLength: 1 })), {
      default: {},
      description: 'extra group memberships by group name, for htpasswd users too: {admin: [alice]}',
    }),
    adminGroup: Type.String({ default: 'admin', description: 'members of this group may use the management API (/api)' }),
    defaultPolicies: Type.Boolean({
      default: true,
      description:
        'built-in rules for repositories no policy names: anyone may pull names of public upstreams, signed-in users those of upstreams Wharf signs in to; signed-in users may pull, push and delete local names. false = only auth.policies',
    }),
    policies: Type.Array(PolicyRuleSchema, { default: [], description: 'allow rules; a request is allowed when any rule (or built-in rule) grants it' }),
    token: Type.Object(
      {
        issuer: Type.String({ minLength: 1, default: 'wharf', description: 'iss claim of the tokens Wharf issues, and required of tokens it accepts' }),
        service: Type.String({ minLength: 1, default: 'wharf', description: 'the service name in the challenge; aud claim of issued tokens' }),
        algorithm: Type.Union([Type.Literal('ES256'), Type.Literal('RS256')], { default: 'ES256', description: 'signature algorithm of issued tokens' }),
        key: Type.Optional(
          Type.String({ minLength: 1, description: 'PEM private key file (PKCS#8); default <storage.path>/auth/token-key.pem, generated on first start' }),
        ),
        lifetime: Duration('5m', 'how long an issued access token is valid'),
        refreshLifetime: Duration('30d', 'how long a refresh token (offline_token=true) is valid'),
        trust: Type.Optional(
          Type.Object(
            {
              issuer: Type.String({ minLength: 1, description: 'iss claim of the external issuer' }),
              keys: Type.String({ minLength: 1, description: 'file with its public key (PEM) or a JWKS document (JSON)' }),
            },
            { additionalProperties: false, description: 'also accept tokens from an external issuer, for the same service' },
          ),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    failedLogins: Type.Object(
      {
        perUser: Type.Integer({ minimum: 1, default: 10, description: 'failed logins allowed per user name within the window' }),
        perAddress: Type.Integer({ minimum: 1, default: 30, description: 'failed logins per client address within the window before it is throttled (made-up names refused, each real user one attempt per window/perUser)' }),
        window: Duration('5m', 'the window; further attempts get 429 with Retry-After until it passes'),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  {
    additionalProperties: false,
    description: 'access control; with no auth key at all Wharf is OPEN: anyone who can reach it may pull, push and delete',
  },
);

const PostgresSchema = Type.Object(
  {
    url: Type.String({
      pattern: '^postgres(ql)?://',
      description:
        'postgres://USER@HOST:PORT/DATABASE of the PostgreSQL database that every node of a cluster shares for its metadata (libpq URL parameters such as sslmode and options=-c search_path=... allowed); the password goes in passwordFile or passwordEnv',
    }),
    passwordFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the database password (trailing newline ignored)' })),
    passwordEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'environment variable holding the database password' })),
    poolSize: Type.Integer({ minimum: 1, default: 10, description: 'connections this node keeps to the database at most' }),
    connectTimeout: Duration('5s', 'how long opening a connection may take; past it the request is answered 503 UNAVAILABLE'),
    statementTimeout: Duration('30s', 'longest statement, ended by the server (the request is answered 503 UNAVAILABLE); 0s = no limit'),
    idleTimeout: Duration('30s', 'an idle connection is closed after this long'),
  },
  { additionalProperties: false, description: 'metadata in PostgreSQL instead of the SQLite file in storage.path: for several nodes sharing one store' },
);

const ClusterSchema = Type.Object(
  {
    advertiseUrl: Type.Optional(
      Type.String({
        pattern: '^https?://[^/?#\\s]+/?$',
        description:
          'the URL the other nodes reach this node at (for the blobs it is filling, GET <advertiseUrl>/internal/fills/<digest>); default: http://<listen host>:<port>, and with a wildcard listen host this machine\'s first non-loopback IPv4 address',
      }),
    ),
    secret: Type.Optional(
      Type.String({ minLength: 16, description: 'the secret every node of the cluster shares, sent between nodes as a bearer token (16 characters at least); prefer secretFile' }),
    ),
    secretFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the shared secret (trailing newline ignored)' })),
    heartbeat: Duration('2s', 'how often a node renews the leases of the blobs it is filling'),
    leaseTimeout: Duration('10s', 'a fill lease not renewed for this long has expired (its node is taken for dead): another node takes the fill over'),
  },
  {
    additionalProperties: false,
    description:
      'several nodes on one metadata.postgres: a cold blob is fetched once in the whole cluster; the node filling it holds a lease in the database and the other nodes stream the bytes from it',
  },
);

const EventActionSchema = Type.Union(['push', 'pull', 'delete', 'fill', 'evict'].map((a) => Type.Literal(a)));

export const WebhookSchema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^\\s]+$', description: 'where events are POSTed (http or https), one envelope per event' }),
    actions: Type.Array(EventActionSchema, { default: [], description: 'the actions sent (push, pull, delete, fill, evict); empty = all' }),
    secretFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the HMAC-SHA256 key of the X-Wharf-Signature header (trailing newline ignored)' })),
    secretEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'environment variable holding the HMAC-SHA256 key' })),
    timeout: Duration('5s', 'how long one POST may take'),
    retries: Type.Integer({ minimum: 0, maximum: 100, default: 3, description: 'further attempts after a failed POST (error, timeout, status outside 2xx); then the event is dropped with a warning' }),
    backoff: Duration('1s', 'wait before the first retry, doubled for each next one'),
    maxBackoff: Duration('1m', 'longest wait between two attempts'),
    queueSize: Type.Integer({ minimum: 1, default: 1000, description: 'events waiting at most; when full the oldest is dropped (counted in a warning), so a slow receiver never holds a request' }),
  },
  { additionalProperties: false },
);

const EventsSchema = Type.Object(
  {
    nats: Type.Optional(
      Type.Object(
        {
          url: Type.String({ pattern: '^(nats|tls)://[^\\s]+$', description: 'nats://host:port of the NATS server (several separated by commas)' }),
          subject: Type.String({
            pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$',
            default: 'wharf',
            description: 'subject prefix: each event is published on <subject>.<action> (wharf.push, wharf.pull, wharf.delete, wharf.fill, wharf.evict)',
          }),
        },
        { additionalProperties: false, description: 'publish every event to NATS; while the server is away events are dropped (never waited for) and the connection retried' },
      ),
    ),
    webhooks: Type.Array(WebhookSchema, { default: [], description: 'HTTP endpoints that receive events' }),
  },
  {
    additionalProperties: false,
    default: {},
    description: "push, pull, delete, fill and evict events in distribution's notification envelope, to NATS and webhooks",
  },
);

const TlsSchema = Type.Object(
  {
    cert: Type.String({ minLength: 1, description: 'PEM file of the server certificate, followed by its intermediates' }),
    key: Type.String({ minLength: 1, description: 'PEM file of the certificate\'s private key' }),
    http2: Type.Boolean({ default: true, description: 'offer HTTP/2 (ALPN h2) beside HTTP/1.1; false = HTTP/1.1 only' }),
    reloadCheck: Duration(
      '10s',
      'how often cert and key are checked for a change (a new file, a new modification time or size); a changed pair is loaded for new connections, open ones keep theirs; a pair that does not load is logged and the old one kept',
    ),
  },
  {
    additionalProperties: false,
    description: 'serve HTTPS (and HTTP/2 where clients offer it) on listen instead of plain HTTP',
  },
);

export const ConfigSchema = Type.Object(
  {
    listen: Type.String({ ...HostPort, default: '0.0.0.0:5000' }),
    storage: Type.Object(
      {
        path: Type.String({
          minLength: 1,
          default: './data',
          description:
            'data directory: blobs, uploads and the metadata database (with storage.s3: the local scratch directory of uploads and fills, and the metadata database); a relative path is relative to the current directory of the wharf process, not to the config file',
        }),
        s3: Type.Optional(S3Schema),
      },
      { additionalProperties: false, default: {} },
    ),
    metadata: Type.Object({ postgres: Type.Optional(PostgresSchema) }, { additionalProperties: false, default: {} }),
    cluster: Type.Optional(ClusterSchema),
    log: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'log level' },
        ),
        format: Type.Optional(
          Type.Union([Type.Literal('json'), Type.Literal('pretty')], {
            description: 'json: one JSON object per line (for log collectors); pretty: one readable line per event (time, level, message, fields). Default: pretty when standard output is a terminal, json otherwise',
          }),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    metrics: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'serve Prometheus metrics at GET /metrics' }),
        auth: Type.Boolean({
          default: false,
          description: 'false: /metrics is open to anyone who reaches Wharf, as Prometheus scrapes usually are; true: it needs an admin (auth.adminGroup) like /api',
        }),
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
        maxAge: Duration('24h', 'upload sessions not updated for longer are removed with their bytes by the collector'),
      },
      { additionalProperties: false, default: {} },
    ),
    http: Type.Object(
      {
        bodyIdleTimeout: Duration(
          '60s',
          'longest pause in a request body: a client that stops sending bytes of a body (a stalled PATCH, a token request with a Content-Length it never fills) is cut after this long; uploads that keep making progress are never cut; 0s = no limit',
        ),
        maxConnectionsPerAddress: Type.Integer({
          minimum: 0,
          default: 128,
          description: 'open connections allowed from one client address (IPv6 per /64); more are answered 429 and closed. Trusted proxies (trustProxy) are not capped. 0 = no cap',
        }),
        trustProxy: Type.Array(Type.String({ pattern: '^([0-9A-Fa-f:.]+(/[0-9]{1,3})?|loopback|linklocal|uniquelocal)$' }), {
          default: [],
          description:
            'addresses or CIDRs of reverse proxies in front of Wharf: a request from one is attributed to the client named in X-Forwarded-For (failed-login limits count that client). Empty: X-Forwarded-For is ignored',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    manifests: Type.Object(
      {
        maxDescriptors: Type.Integer({
          minimum: 1,
          default: 10000,
          description: 'most descriptors (layers or child manifests, config, subject) one manifest may hold, pushed or pulled through; more is refused with 400 MANIFEST_INVALID',
        }),
        cacheSize: Size('64MiB', 'manifest bytes held in memory (the most recently pulled manifests and their tags are served without a file read or a query): bytes or 64MiB, 1GiB; 0 = none'),
      },
      { additionalProperties: false, default: {} },
    ),
    upstreams: Type.Array(UpstreamSchema, {
      default: [],
      description: 'registries mirrored through the pull-through cache; names routed to one are read-only here',
    }),
    local: Type.Object(
      {
        namespaces: Type.Array(Type.String({ pattern: '^[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*$' }), {
          default: [],
          description: 'first path components that are local (pushes allowed), e.g. [local, team]',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    gc: Type.Object(
      {
        interval: Duration('1h', 'how often the collector runs while serving; 0s = never on a schedule (wharf gc and POST /api/gc still work)'),
        grace: Duration('1h', 'anything created or touched within this long is kept, whatever else holds it'),
        deleteUntagged: Type.Boolean({ default: false, description: 'also delete untagged local manifests (not held by a tag, an index or a live subject)' }),
      },
      { additionalProperties: false, default: {} },
    ),
    warm: Type.Object(
      {
        images: Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
          default: [],
          maxItems: 1000,
          description:
            'images kept warm, as clients name them (docker.io/library/alpine:3.20, ghcr.io/org/app@sha256:...); a tag may be a pattern of the tags the upstream lists (docker.io/library/alpine:3.*, * and ?). Warmed when the server starts, then every interval',
        }),
        interval: Duration('1h', 'how often warm.images are warmed again (new digests of their tags fetched, moved tags logged); 0s = only when the server starts'),
        platforms: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$' }), {
          default: [],
          description: 'platforms of a multi-platform image to warm, os/arch[/variant] (linux/amd64); empty: every platform',
        }),
        referrers: Type.Boolean({ default: false, description: 'also warm the referrers of each manifest (signatures, SBOMs, attestations)' }),
        concurrency: Type.Integer({ minimum: 1, maximum: 32, default: 4, description: 'manifest and blob fetches of a scheduled warm running at once' }),
      },
      { additionalProperties: false, default: {}, description: 'pre-warming: images fetched into the cache on a schedule (also POST /api/warm and wharf warm)' },
    ),
    cache: Type.Object(
      {
        maxAge: Duration('0s', 'cached (upstream-routed) manifests not pulled for longer are dropped, then what only they held; 0s = no age limit'),
        maxSize: Size(0, 'while cached bytes exceed this, the least recently pulled cached images go first: bytes or 500MiB, 10GiB, 1TB; 0 = no limit'),
      },
      { additionalProperties: false, default: {} },
    ),
    publicUrl: Type.Optional(
      Type.String({
        pattern: '^https?://[^/?#\\s]+(/[^?#\\s]*)?$',
        description: 'the URL clients reach Wharf at (behind a proxy or TLS terminator); the token realm is <publicUrl>/auth/token. Default: from the request Host header',
      }),
    ),
    auth: Type.Optional(AuthSchema),
    events: EventsSchema,
    tls: Type.Optional(TlsSchema),
    shutdownTimeoutMs: Type.Integer({
      minimum: 0,
      default: 30000,
      description: 'on SIGTERM, how long in-flight requests may take before the process exits anyway',
    }),
  },
  { additionalProperties: false, $id: 'https://wharf.dev/schema/config.json', title: 'Wharf configuration' },
);

/** The configuration as loaded: durations in milliseconds, sizes in bytes. */
export type WharfConfig = Omit<StaticDecode<typeof ConfigSchema>, 'upstreams'> & { upstreams: UpstreamConfig[]; upstreamProxy?: UpstreamProxy };
export type TlsConfig = StaticDecode<typeof TlsSchema>;
/** An upstream as loaded, with the PEM text the loader read from tls.ca. */
export type UpstreamConfig = StaticDecode<typeof UpstreamSchema> & { tls: { caPem?: string } };
/**
 * Forward proxies for upstream traffic, from HTTPS_PROXY / HTTP_PROXY / NO_PROXY (lower case first, as
 * curl and undici read them): the loader reads them from the environment it is given, so nothing below
 * config/ reads process.env.
 */
export interface UpstreamProxy {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
}
export type AuthConfig = StaticDecode<typeof AuthSchema>;
/** metadata.postgres as loaded, with the password the loader read from passwordFile or passwordEnv. */
export type PostgresConfig = StaticDecode<typeof PostgresSchema> & { password?: string };
/** cluster as loaded, with the secret the loader read from secretFile. */
export type ClusterConfig = StaticDecode<typeof ClusterSchema>;
/** events.webhooks[] as loaded, with the key the loader read from secretFile or secretEnv. */
export type WebhookConfig = StaticDecode<typeof WebhookSchema> & { secret?: string };
export type PolicyRule = Static<typeof PolicyRuleSchema>;
export type AuthUser = Static<typeof AuthUserSchema>;
