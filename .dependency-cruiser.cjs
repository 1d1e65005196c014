// @ts-check
// The dependency rule of the source tree: imports point down only, type-only imports included
// (tsPreCompilationDeps). `npm run lint:deps` checks it; test/unit/layering.test.ts proves it catches a planted
// upward import.
//
//   oci  <  config  <  events, storage, metadata  <  ledger, upstream  <  registry  <  proxy, gc, auth  <  warm  <  http  <  cli, app.ts
//
// The rules are the design's forbidden imports, plus the design's import lists of the lower folders (oci, config,
// upstream, ledger, metadata): together they leave no way for two folders to import each other, directly or round
// a cycle. Folder cycles and module cycles are forbidden outright too.

/** A folder of src/, as a path pattern. */
const dir = (/** @type {string[]} */ ...names) => `^src/(${names.join('|')})/`;
const file = (/** @type {string} */ path) => `^src/${path.replaceAll('.', '\\.')}$`;

/**
 * Imports that break a rule, each allowed in one file only, to one target only, until the code moves (none today).
 * @type {{ rule: string, from: string, to: string, why: string }[]}
 */
const EXCEPTIONS = [];

/** @typedef {{ name: string, comment: string, from: { path: string, pathNot?: string[] }, to: { path: string | string[], pathNot?: string[] } }} Rule */

/** @type {Rule[]} */
const RULES = [
  {
    name: 'oci-is-a-leaf',
    comment: 'oci/ (digests, media types, references) imports nothing internal',
    from: { path: dir('oci') },
    to: { path: '^src/', pathNot: [dir('oci')] },
  },
  {
    name: 'config-imports-only-oci',
    comment: 'config/ is read by every layer, so it imports none of them but oci/',
    from: { path: dir('config') },
    to: { path: '^src/', pathNot: [dir('config', 'oci')] },
  },
  {
    name: 'events-imports-config-oci',
    comment: 'events/ (the EventSink every layer emits through, and its NATS and webhook outlets) sits below all who emit',
    from: { path: dir('events') },
    to: { path: '^src/', pathNot: [dir('events', 'config', 'oci')] },
  },
  {
    name: 'storage-imports-only-oci',
    comment: 'storage/ knows digests and nothing else of the registry; it throws its own errors',
    from: { path: dir('storage') },
    to: { path: '^src/', pathNot: [dir('storage', 'oci')] },
  },
  {
    name: 'metadata-imports-only-oci',
    comment: 'metadata/ stores rows for the layers above it and imports none of them',
    from: { path: dir('metadata') },
    to: { path: '^src/', pathNot: [dir('metadata', 'oci')] },
  },
  {
    name: 'upstream-imports-config-oci',
    comment: 'upstream/ clients know the configuration and OCI, not what the registry does with their answers',
    from: { path: dir('upstream') },
    to: { path: '^src/', pathNot: [dir('upstream', 'config', 'oci')] },
  },
  {
    name: 'ledger-imports-storage-metadata-oci',
    comment: "ledger/ owns a blob's life over the store and the rows, below every user of blobs",
    from: { path: dir('ledger') },
    to: { path: '^src/', pathNot: [dir('ledger', 'storage', 'metadata', 'oci')] },
  },
  {
    name: 'registry-not-upward',
    comment: 'the local registry knows nothing of the pull-through cache, the collector, auth or http',
    from: { path: dir('registry') },
    to: { path: dir('proxy', 'gc', 'auth', 'http') },
  },
  {
    name: 'proxy-not-upward',
    comment: 'the pull-through cache decorates the registry; the collector, auth and http sit above it',
    from: { path: dir('proxy') },
    to: { path: dir('gc', 'auth', 'http') },
  },
  {
    name: 'warm-not-upward',
    comment: 'warming drives the pull-through cache as a client would; the collector, auth and http sit beside or above it',
    from: { path: dir('warm') },
    to: { path: dir('gc', 'auth', 'http') },
  },
  {
    name: 'gc-not-upward',
    comment: 'the collector works through the ledger and interfaces: no registry, proxy or http, and no FsBlobStore',
    from: { path: dir('gc') },
    to: { path: [dir('registry', 'proxy', 'http'), file('storage/fs-blob-store.ts')] },
  },
  {
    name: 'auth-not-http',
    comment: 'auth decides on names and credentials: fastify, http, the proxy and the collector are not its business',
    from: { path: dir('auth') },
    to: { path: [dir('http', 'proxy', 'gc'), '^node_modules/(fastify|@fastify/)'] },
  },
  {
    name: 'only-cli-imports-http',
    comment: 'http/ is the top: only the composition root (app.ts) and the CLI build on it',
    from: { path: '^src/', pathNot: [file('app.ts'), dir('cli', 'http')] },
    to: { path: dir('http') },
  },
  {
    name: 'nothing-imports-cli',
    comment: 'cli/ and app.ts are the entry and the composition root: nothing imports them (main.ts starts cli/)',
    from: { path: '^src/', pathNot: [file('main.ts'), file('app.ts'), dir('cli')] },
    to: { path: [file('app.ts'), dir('cli')] },
  },
];

/** A rule with its exceptions: the excepted files keep the rule for every other target. */
function withExceptions(/** @type {Rule} */ rule) {
  const own = EXCEPTIONS.filter((e) => e.rule === rule.name);
  const excepted = [...new Set(own.map((e) => e.from))];
  const base = { name: rule.name, comment: rule.comment, severity: /** @type {const} */ ('error') };
  return [
    { ...base, from: { ...rule.from, pathNot: [...(rule.from.pathNot ?? []), ...excepted.map(file)] }, to: rule.to },
    ...excepted.map((from) => ({
      ...base,
      from: { path: file(from) },
      to: {
        ...rule.to,
        pathNot: [...(rule.to.pathNot ?? []), ...own.filter((e) => e.from === from).map((e) => `^(src/)?${e.to.replaceAll('.', '\\.')}$`)],
      },
    })),
  ];
}

for (const e of EXCEPTIONS) {
  if (!RULES.some((r) => r.name === e.rule)) throw new Error(`.dependency-cruiser.cjs: an exception names no rule: ${e.rule}`);
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...RULES.flatMap(withExceptions),
    {
      name: 'no-folder-cycles',
      comment: 'folders (subfolders included) import each other one way only, round a cycle included',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-circular',
      comment: 'modules import each other one way only',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // src/ and the one package a rule names.
    includeOnly: '^(src/|node_modules/(fastify|@fastify)/)',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
