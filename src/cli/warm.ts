// `wharf warm IMAGE...`: asks a running server to fetch images into its cache (POST /api/warm) and shows
// the job's progress as it streams in: a bar per image and one overall on a terminal (cli-progress),
// a line per image otherwise; then a summary. Exit status 1 when any image failed.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatHostPort, parseListen } from '../config/listen.js';
import type { WarmEvent, WarmSummary } from '../warm/warm-job.js';
import { printHelp, UsageError, type CliIo, type Command, type CommandHelp, type Output } from './command.js';
import { loadCliConfig } from './config.js';
import { formatBytes } from './format-bytes.js';

const help: CommandHelp[] = [
  {
    name: 'warm',
    synopsis: `IMAGE... [--file LIST] [--platform OS/ARCH[,...] | --all-platforms]
               [--referrers] [--concurrency N] [--server URL] [--user NAME]
               [--password PASSWORD | --token TOKEN] [--config FILE]
               [--listen HOST:PORT]`,
    text: `Fetch images into a running server's cache, as pulls would (POST /api/warm).
IMAGE is named as clients name it: alpine (docker.io/library/alpine:latest),
ghcr.io/org/app:1.2, registry:5000/team/app@sha256:...; a tag may be a pattern
of the upstream's tags (alpine:3.*). --file reads more, one a line (- for
stdin, # comments). Every platform of an index unless --platform names some;
--referrers also fetches signatures, SBOMs and attestations. --server defaults
to where the configuration listens (read as serve reads it). With auth on,
an admin's --user and --password (or WHARF_USER, WHARF_PASSWORD), or an
access token from the server's /auth/token with scope wharf:api:manage as
--token (or WHARF_TOKEN), sent as Bearer. Shows progress, then a summary;
exit status 1 when anything failed.`,
  },
];

async function warm(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      help: { type: 'boolean', short: 'h' },
      file: { type: 'string', short: 'f', multiple: true },
      platform: { type: 'string', short: 'p', multiple: true },
      'all-platforms': { type: 'boolean' },
      referrers: { type: 'boolean' },
      concurrency: { type: 'string', short: 'j' },
      server: { type: 'string', short: 's' },
      user: { type: 'string', short: 'u' },
      password: { type: 'string' },
      token: { type: 'string', short: 't' },
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', short: 'l' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return printHelp(io, help, 'warm');
  const images = [...positionals, ...(values.file ?? []).flatMap((f) => imagesIn(f))];
  if (images.length === 0) throw new UsageError('warm needs at least one IMAGE (or --file LIST)');
  const platforms = (values.platform ?? []).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
  if (platforms.length > 0 && values['all-platforms']) throw new UsageError('give --platform or --all-platforms, not both');
  let concurrency: number | undefined;
  if (values.concurrency !== undefined) {
    concurrency = Number(values.concurrency);
    if (!/^\d+$/.test(values.concurrency) || concurrency < 1 || concurrency > 32) throw new UsageError(`--concurrency ${values.concurrency}: a number from 1 to 32`);
  }
  const server = (values.server ?? defaultServer(io, values)).replace(/\/+$/, '');
  // The configuration's own address over HTTPS is a loopback one its certificate need not name (as for
  // healthcheck); a --server URL is verified (NODE_EXTRA_CA_CERTS for a private CA).
  const unverified = values.server === undefined && server.startsWith('https:');
  if (!/^https?:\/\/[^/]+$/.test(server)) throw new UsageError(`--server ${server}: expected http://HOST:PORT or https://HOST:PORT`);
  const user = values.user ?? (io.env.WHARF_USER || undefined);
  const password = values.password ?? (io.env.WHARF_PASSWORD || undefined);
  if ((user === undefined) !== (password === undefined)) throw new UsageError('--user and --password (or WHARF_USER and WHARF_PASSWORD) go together');
  const token = values.token ?? (io.env.WHARF_TOKEN || undefined);
  if (token !== undefined && user !== undefined) throw new UsageError('give --user and --password or --token (WHARF_USER and WHARF_PASSWORD or WHARF_TOKEN), not both');
  // A header value cannot hold a line break or other control characters: refuse before anything is sent.
  if (token !== undefined && !/^[\x21-\x7e]{1,8192}$/.test(token)) throw new UsageError('--token (or WHARF_TOKEN): expected the access token text, without spaces or line breaks');
  const authorization =
    token !== undefined ? `Bearer ${token}` : user !== undefined ? `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}` : undefined;

  const body = {
    images,
    ...(platforms.length > 0 ? { platforms } : {}),
    ...(values['all-platforms'] ? { allPlatforms: true } : {}),
    ...(values.referrers ? { referrers: true } : {}),
    ...(concurrency === undefined ? {} : { concurrency }),
  };
  const url = `${server}/api/warm`;
  let res: Response;
  try {
    const { Agent, fetch } = await import('undici');
    res = await fetch(url, {
      ...(unverified ? { dispatcher: new Agent({ connect: { rejectUnauthorized: false } }) } : {}),
      method: 'POST',
      body: JSON.stringify(body),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'wharf-warm',
        ...(authorization === undefined ? {} : { authorization }),
      },
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    io.stderr.write(`wharf: warm: cannot reach ${url}: ${cause ?? (err as Error).message}\n`);
    return 1;
  }
  if (res.status !== 200 || !res.body) {
    io.stderr.write(`wharf: warm: ${url}: ${await refusal(res)}\n`);
    return 1;
  }

  // Loaded here: the other commands (serve above all) need no progress bars.
  const { WarmDisplay } = await import('./warm-display.js');
  const display = new WarmDisplay(io.stdout as Output & Partial<NodeJS.WriteStream>);
  let summary: WarmSummary | undefined;
  try {
    for await (const event of ndjson(res.body)) {
      display.event(event);
      if (event.type === 'summary') summary = event;
    }
  } catch (err) {
    display.stop();
    io.stderr.write(`wharf: warm: the stream from ${url} broke off: ${(err as Error).message}\n`);
    return 1;
  }
  display.stop();
  if (!summary) {
    io.stderr.write(`wharf: warm: ${url} ended the stream before its summary: the server may have stopped; see GET /api/warm\n`);
    return 1;
  }
  io.stdout.write(formatSummary(summary));
  return summary.failures.length > 0 ? 1 : 0;
}

/** Images listed in a file (`-`: stdin), one a line; blank lines and # comments skipped. */
function imagesIn(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`--file ${file}: ${(err as Error).message}`);
  }
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** The server's URL from the configuration's listen, as `wharf healthcheck` finds it. */
function defaultServer(io: CliIo, flags: { config?: string; listen?: string }): string {
  const config = loadCliConfig(io, { config: flags.config, listen: flags.listen });
  const { host, port } = parseListen(config.listen);
  if (port === 0) throw new UsageError('the configuration listens on port 0 (a free port picked at start-up): give --server URL');
  return `${config.tls === undefined ? 'http' : 'https'}://${formatHostPort(host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, port)}`;
}

/** What a refusal says: the OCI error's message, with a hint for a missing sign-in. */
async function refusal(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  let message = `HTTP ${res.status}`;
  try {
    const first = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors?.[0];
    if (first?.message) message = `${first.code ?? res.status}: ${first.message}`;
  } catch {
    if (text) message += `: ${text.slice(0, 200)}`;
  }
  if (res.status === 401) {
    message += " (give an admin's --user and --password, or WHARF_USER and WHARF_PASSWORD, or --token with an access token of scope wharf:api:manage)";
  }
  return message;
}

/** The JSON objects of an NDJSON body, as their lines arrive. */
async function* ndjson(body: ReadableStream<Uint8Array>): AsyncGenerator<WarmEvent> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) yield JSON.parse(line) as WarmEvent;
    }
  }
  if (buffered.trim()) yield JSON.parse(buffered) as WarmEvent;
}

export function formatSummary(s: WarmSummary): string {
  const lines = [
    `warm ${s.failures.length > 0 ? 'finished with failures' : 'finished'}`,
    `  images:               ${s.images}`,
    `  manifests:            ${s.manifests}`,
    `  blobs:                ${s.blobs}`,
    `  bytes fetched:        ${s.bytesFetched} (${formatBytes(s.bytesFetched)})`,
    `  bytes already cached: ${s.bytesCached} (${formatBytes(s.bytesCached)})`,
    `  failures:             ${s.failures.length}`,
    ...s.failures.map((f) => `    ${f.image}: ${f.reason}`),
  ];
  return `${lines.join('\n')}\n`;
}

export const warmCommand: Command = { name: 'warm', help, run: warm };
