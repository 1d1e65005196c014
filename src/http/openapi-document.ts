// The OpenAPI 3.1 description of every /api route (served at GET /api/openapi.json). Written by hand:
// the routes declare no fastify schemas (app.ts says why), so nothing generates it. A test lists the
// /api routes fastify registered and fails when one is missing here: a new route comes with its entry.
// Field names and shapes are those of the management API's shared contract (issue 13).

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (type: string, extra: Schema = {}): Schema => ({ type: [type, 'null'], ...extra });
const time = (description: string): Schema => nullable('string', { format: 'date-time', description });
const int = (description?: string): Schema => ({ type: 'integer', minimum: 0, ...(description ? { description } : {}) });
const str = (description?: string): Schema => ({ type: 'string', ...(description ? { description } : {}) });
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({
  type: 'object',
  properties,
  required,
});
const array = (items: Schema): Schema => ({ type: 'array', items });

const json = (schema: Schema, description: string) => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('Error'), description);

/** Answers every admin endpoint may give besides its own. */
const ADMIN_ERRORS = {
  '401': error('No credentials (the WWW-Authenticate header names the token realm), or an admin\'s token without the scope wharf:api:manage (error="insufficient_scope", scope="wharf:api:manage"), or an expired token; only when auth is on'),
  '403': error('Signed in, but not a member of auth.adminGroup (a service token or an external issuer\'s token never is)'),
  '429': error('Too many failed sign-ins from this address'),
};
const ADMIN = { security: [{ adminBasic: [] }, { adminBearer: [] }] };

const pageParams = [
  { name: 'n', in: 'query', required: false, description: 'Entries per page: default 100, at most 1000 (a larger n is cut to 1000)', schema: { type: 'integer', minimum: 0, maximum: 999_999_999 } },
  { name: 'last', in: 'query', required: false, description: 'The last entry of the previous page (exclusive); pages follow the Link header', schema: str() },
];
const linkHeader = { Link: { description: 'The next page, as the catalogue gives it: `</api/...?n=N&last=X>; rel="next"`; absent on the last page', schema: str() } };
const nameParam = {
  name: 'name',
  in: 'path',
  required: true,
  description:
    'A repository name as stored (`team/app`, an upstream image as `docker.io/library/alpine`) or as a client pulls it (`library/alpine` through the default upstream). It contains slashes, sent as they are; no component of a name is `-`, so sub-resources follow `/-/`.',
  schema: str(),
};
const tagParam = { name: 'tag', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$' } };

const repoErrors = { '400': error('NAME_INVALID (a bad name) or PAGINATION_NUMBER_INVALID (a bad n)'), '404': error('NAME_UNKNOWN'), ...ADMIN_ERRORS };

const schemas: Record<string, Schema> = {
  Error: obj({
    errors: array(obj({ code: str('A stable code: NAME_INVALID, NAME_UNKNOWN, DENIED, ...'), message: str('What happened and what to do'), detail: {} })),
  }),
  Repository: obj({
    name: str('The name as stored'),
    kind: { type: 'string', enum: ['local', 'cached'], description: 'local = pushed here; cached = content of an upstream' },
    upstream: nullable('string', { description: 'The configured name of the upstream a cached repository comes from; null for a local one' }),
    sizeBytes: int('Bytes stored for it: its manifests, plus each distinct blob they reference whose bytes are stored (a blob shared by several images counts once; a layer of a cached image nobody pulled counts nothing)'),
    tagCount: int(),
    manifestCount: int(),
    lastPush: time('When content last arrived: the newest manifest recorded or tag set (a push; for a cached repository, a fill from the upstream)'),
    lastPull: time('The newest pull of any of its manifests (a fill from the upstream counts); null when never pulled'),
  }),
  Tag: obj({
    name: str(),
    digest: str(),
    mediaType: str(),
    sizeBytes: int('The manifest, the blobs it references and, for an index, its child manifests stored here with theirs (each blob once)'),
    pushedAt: time('When the tag was last set (pushed, or moved by a fill)'),
  }),
  Manifest: obj({
    digest: str(),
    mediaType: str(),
    sizeBytes: int('Itself, its blobs and, for an index, its stored children with theirs (each blob once)'),
    tags: array(str()),
    createdAt: time('When it was first recorded here'),
    lastPull: time('null when never pulled'),
  }),
  GcReport: obj({
    dryRun: { type: 'boolean' },
    startedAt: { type: 'string', format: 'date-time' },
    durationMs: int(),
    manifestsDeleted: int(),
    tagsDeleted: int(),
    blobsDeleted: int(),
    uploadsDeleted: int(),
    bytesReclaimed: int('Blob bytes removed (each blob once)'),
    bytesKept: int('Blob bytes remaining (each blob once)'),
    evictedByAge: int(),
    evictedBySize: int(),
    orphanFilesRemoved: int(),
  }),
  TokenScope: obj({ repositories: array(str('A repository name or glob')), actions: array(str('pull, push, delete or *')) }),
  ServiceToken: obj({
    id: str(),
    name: str('The Basic-auth user name to use with the token'),
    scopes: array(ref('TokenScope')),
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: time('null = never'),
    revokedAt: time('null = active'),
    lastUsedAt: time('null = never used'),
  }),
  Stats: obj({
    cache: obj({
      hits: int(),
      misses: int(),
      coalesced: int(),
      stale: int(),
      hitRatio: nullable('number', { minimum: 0, maximum: 1, description: 'null when no requests yet' }),
      bytesServed: int(),
      bytesServedFromCache: int(),
      fillsInFlight: int(),
    }),
    upstreams: array(
      obj({
        name: str(),
        url: str(),
        requests: int(),
        errors: int(),
        bytesFetched: int(),
        lastError: nullable('string'),
        lastErrorAt: time('When the last error happened'),
        health: { type: 'string', enum: ['ok', 'degraded', 'down', 'unknown'] },
        rateLimit: obj({ limit: nullable('integer'), remaining: nullable('integer') }),
      }),
    ),
    storage: obj({ totalBytes: int(), namespaces: array(obj({ namespace: str(), bytes: int(), repositories: int() })) }),
    history: array(obj({ at: { type: 'string', format: 'date-time' }, hits: int(), misses: int(), bytesFetched: int() })),
  }),
  WarmRequest: obj(
    {
      images: array(str('As clients name them: docker.io/library/alpine:3.20, ghcr.io/org/app@sha256:...')),
      platforms: array({ type: 'string', pattern: '^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$', description: 'os/arch[/variant]' }),
      allPlatforms: { type: 'boolean' },
      referrers: { type: 'boolean', description: 'Also warm referrers (signatures, SBOMs)' },
      concurrency: { type: 'integer', minimum: 1, maximum: 32, default: 4 },
    },
    ['images'],
  ),
  WarmEvent: {
    oneOf: [
      obj({ type: { const: 'start' }, jobId: str(), images: array(str()) }),
      obj(
        {
          type: { const: 'image' },
          image: str(),
          state: { type: 'string', enum: ['resolving', 'fetching', 'done', 'failed'] },
          manifests: int(),
          blobs: int(),
          blobsTotal: int(),
          bytesFetched: int(),
          bytesCached: int(),
          error: str(),
        },
        ['type', 'image', 'state', 'manifests', 'blobs', 'blobsTotal', 'bytesFetched', 'bytesCached'],
      ),
      obj({ type: { const: 'summary' }, images: int(), manifests: int(), blobs: int(), bytesFetched: int(), bytesCached: int(), failures: array(ref('WarmFailure')) }),
    ],
  },
  WarmFailure: obj({ image: str(), reason: str() }),
  WarmJob: obj({
    id: str(),
    images: array(str()),
    state: { type: 'string', enum: ['running', 'done', 'failed'] },
    startedAt: { type: 'string', format: 'date-time' },
    finishedAt: time('null while running'),
    manifests: int(),
    blobs: int(),
    bytesFetched: int(),
    bytesCached: int(),
    failures: array(ref('WarmFailure')),
    trigger: { type: 'string', enum: ['api', 'schedule'], description: 'POST /api/warm (wharf warm), or warm.images on their schedule' },
    moved: array(obj({ image: str(), from: str('the digest the cache had'), to: str('the digest the upstream has now') })),
  }),
  Whoami: obj({
    user: nullable('string', { description: 'The signed-in user; null when anonymous' }),
    admin: { type: 'boolean', description: 'May use the management API (always true when auth is off)' },
    authEnabled: { type: 'boolean' },
  }),
};

const paths: Record<string, Record<string, Schema>> = {
  '/api/openapi.json': {
    get: { summary: 'This document', tags: ['meta'], responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } },
  },
  '/api/whoami': {
    get: {
      summary: 'Who the caller is (any caller; the dashboard signs in with it)',
      tags: ['meta'],
      security: [{}, { adminBasic: [] }, { adminBearer: [] }],
      responses: {
        '200': json(ref('Whoami'), 'The caller'),
        '401': error('Credentials given but wrong'),
        '429': error('Too many failed sign-ins from this address'),
      },
    },
  },
  '/api/repositories': {
    get: {
      summary: 'Repositories, in name order, a page at a time',
      tags: ['repositories'],
      ...ADMIN,
      parameters: pageParams,
      responses: {
        '200': { ...json(obj({ repositories: array(ref('Repository')) }), 'A page of repositories'), headers: linkHeader },
        '400': error('PAGINATION_NUMBER_INVALID'),
        ...ADMIN_ERRORS,
      },
    },
  },
  '/api/repositories/{name}': {
    get: {
      summary: 'One repository',
      tags: ['repositories'],
      ...ADMIN,
      parameters: [nameParam],
      responses: { '200': json(ref('Repository'), 'The repository'), ...repoErrors },
    },
    delete: {
      summary: 'Delete a repository: its tags and manifests (the collector then removes the blobs nothing else holds); a cached repository is filled again by the next pull',
      tags: ['repositories'],
      ...ADMIN,
      parameters: [nameParam],
      responses: { '204': { description: 'Deleted' }, ...repoErrors },
    },
  },
  '/api/repositories/{name}/-/tags': {
    get: {
      summary: "A repository's tags, in lexical order, a page at a time",
      tags: ['repositories'],
      ...ADMIN,
      parameters: [nameParam, ...pageParams],
      responses: { '200': { ...json(obj({ tags: array(ref('Tag')) }), 'A page of tags'), headers: linkHeader }, ...repoErrors },
    },
  },
  '/api/repositories/{name}/-/tags/{tag}': {
    delete: {
      summary: 'Delete a tag (the manifest stays until the collector finds nothing holds it)',
      tags: ['repositories'],
      ...ADMIN,
      parameters: [nameParam, tagParam],
      responses: {
        '204': { description: 'Deleted' },
        '400': error('NAME_INVALID or INVALID_REQUEST (a bad tag)'),
        '404': error('NAME_UNKNOWN, or MANIFEST_UNKNOWN for a tag that is not there'),
        ...ADMIN_ERRORS,
      },
    },
  },
  '/api/repositories/{name}/-/manifests': {
    get: {
      summary: "A repository's manifests with their tags, in digest order, a page at a time",
      tags: ['repositories'],
      ...ADMIN,
      parameters: [nameParam, ...pageParams],
      responses: { '200': { ...json(obj({ manifests: array(ref('Manifest')) }), 'A page of manifests'), headers: linkHeader }, ...repoErrors },
    },
  },
  '/api/stats': {
    get: {
      summary: 'Cache statistics, upstream health and rate limits, storage per namespace, the last hour per minute',
      tags: ['stats'],
      ...ADMIN,
      responses: { '200': json(ref('Stats'), 'Statistics since the process started'), ...ADMIN_ERRORS },
    },
  },
  '/api/gc': {
    get: {
      summary: 'The last garbage collections, newest first',
      tags: ['gc'],
      ...ADMIN,
      responses: { '200': json(obj({ runs: array(ref('GcReport')) }), 'The last runs'), ...ADMIN_ERRORS },
    },
    post: {
      summary: 'Run a garbage collection now and answer with its report',
      tags: ['gc'],
      ...ADMIN,
      parameters: [{ name: 'dryRun', in: 'query', required: false, description: 'true = report what would go, delete nothing', schema: { type: 'string', enum: ['true', 'false'] } }],
      responses: {
        '200': json(ref('GcReport'), 'The report'),
        '400': error('INVALID_REQUEST (dryRun neither true nor false)'),
        '409': error('Another collection is in progress (Retry-After says when to come back)'),
        ...ADMIN_ERRORS,
      },
    },
  },
  '/api/warm': {
    get: {
      summary: 'Recent and running warm jobs',
      tags: ['warm'],
      ...ADMIN,
      responses: { '200': json(obj({ jobs: array(ref('WarmJob')) }), 'The jobs'), ...ADMIN_ERRORS },
    },
    post: {
      summary: 'Fill the cache with images, streaming progress',
      tags: ['warm'],
      ...ADMIN,
      requestBody: { required: true, content: { 'application/json': { schema: ref('WarmRequest') } } },
      responses: {
        '200': { description: 'One JSON event per line: start, then image events, then a summary', content: { 'application/x-ndjson': { schema: ref('WarmEvent') } } },
        '400': error('INVALID_REQUEST (a bad body, image name or platform)'),
        '413': error('SIZE_INVALID: a body over 1 MiB'),
        ...ADMIN_ERRORS,
        '429': error('Too many failed sign-ins, or as many warm jobs running as the server runs at once'),
        '503': error('The server is shutting down'),
      },
    },
  },
  '/api/tokens': {
    get: {
      summary: 'Service tokens (secrets are never shown again)',
      tags: ['tokens'],
      ...ADMIN,
      responses: { '200': json(obj({ tokens: array(ref('ServiceToken')) }), 'The tokens'), ...ADMIN_ERRORS },
    },
    post: {
      summary: 'Create a service token; the answer holds its secret, shown once',
      tags: ['tokens'],
      ...ADMIN,
      requestBody: {
        required: true,
        content: { 'application/json': { schema: obj({ name: str(), scopes: array(ref('TokenScope')), expiresIn: str('A duration such as 90d') }, ['name', 'scopes']) } },
      },
      responses: {
        '201': json({ allOf: [ref('ServiceToken'), obj({ token: str('The secret: the Basic-auth password') })] }, 'Created'),
        '400': error('INVALID_REQUEST'),
        ...ADMIN_ERRORS,
      },
    },
  },
  '/api/tokens/{id}': {
    delete: {
      summary: 'Revoke a service token',
      tags: ['tokens'],
      ...ADMIN,
      parameters: [{ name: 'id', in: 'path', required: true, description: 'The id or the name of an active token', schema: str() }],
      responses: { '200': json(ref('ServiceToken'), 'The revoked token'), '404': error('NOT_FOUND'), ...ADMIN_ERRORS },
    },
  },
};

/** The document, built once. */
export const openApiDocument = Object.freeze({
  openapi: '3.1.0',
  info: {
    title: 'Wharf management API',
    version: '1',
    description:
      'Under /api. Admins only when auth is on (members of auth.adminGroup, with Basic credentials or a Bearer access token from this registry\'s /auth/token carrying the scope wharf:api:manage); open when it is off. JSON with stable camelCase fields, times as ISO-8601 strings or null, sizes in bytes. Errors use the OCI body {"errors":[{"code","message","detail"}]}. Pages take n and last and link the next one in a Link header, as the catalogue does.',
  },
  paths,
  components: { schemas, securitySchemes: {
      adminBasic: { type: 'http', scheme: 'basic', description: 'The user name and password of a member of auth.adminGroup' },
      adminBearer: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'An access token from this registry\'s /auth/token (Docker token flow) issued to a member of auth.adminGroup with scope=wharf:api:manage (type wharf, name api, action manage; granted only to admins, left out for anyone else). Group membership is checked again on every request. Service tokens and tokens of an external issuer (auth.token.trust) never qualify.',
      },
    },
  },
});
