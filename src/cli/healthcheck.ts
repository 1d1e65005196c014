// `wharf healthcheck`: the container image's HEALTHCHECK. It reads the configuration exactly as `serve`
// does (--config or $WHARF_CONFIG, then WHARF_* variables, then --listen) and asks GET /healthz on the
// address that configuration listens on, so the check follows a mounted config file's `listen` instead of
// a port written into the image.
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseArgs } from 'node:util';
import { formatHostPort, parseListen } from '../config/listen.js';
import type { CliIo, Command, CommandHelp } from './command.js';
import { loadCliConfig } from './config.js';

const HEALTHCHECK_USAGE = `Usage: wharf healthcheck [--config FILE] [--listen HOST:PORT] [--timeout MS]

Reads the configuration as 'wharf serve' does (FILE or $WHARF_CONFIG, then WHARF_*
variables, then --listen) and asks GET /healthz at the address it listens on
(127.0.0.1 when it listens on every address, IPv4 or IPv6); over HTTPS when tls is
set, without verifying the certificate (issued for the name clients use). Prints the answer; exit
status 0 when it is 200, 1 otherwise (no answer within MS milliseconds, default 2000).
`;

/** Its entry in `wharf --help`; its own --help prints HEALTHCHECK_USAGE, which says more. */
const help: CommandHelp[] = [
  {
    name: 'healthcheck',
    synopsis: '[--config FILE] [--listen HOST:PORT] [--timeout MS]',
    text: `Ask GET /healthz where the configuration (read as serve reads it) listens;
exit status 0 when it answers 200 (the container image's HEALTHCHECK).`,
  },
];

/**
 * The URL of /healthz for a `listen` value: a wildcard address is asked on IPv4 loopback. `::` too:
 * Node listens there dual-stack, and a container network without IPv6 has no ::1 to ask.
 */
export function healthzUrl(listen: string, tls = false): string {
  const { host, port } = parseListen(listen);
  if (port === 0) throw new RangeError(`listen is ${listen}: port 0 picks a free port at start-up, so there is no port to check`);
  const target = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `${tls ? 'https' : 'http'}://${formatHostPort(target, port)}/healthz`;
}

function get(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    // With tls the check asks over HTTPS without verifying the certificate: it is issued for the name
    // clients use, which the loopback address the check dials is often not, and the check only asks
    // whether this machine's server answers (nothing secret is sent or believed).
    const send = url.startsWith('https:') ? httpsRequest : request;
    const req = send(url, { method: 'GET', timeout: timeoutMs, rejectUnauthorized: false, headers: { 'user-agent': 'wharf-healthcheck' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

async function healthcheck(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      help: { type: 'boolean', short: 'h' },
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', short: 'l' },
      timeout: { type: 'string' },
    },
    allowPositionals: false,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(HEALTHCHECK_USAGE);
    return 0;
  }
  const timeoutMs = values.timeout === undefined ? 2000 : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new RangeError(`--timeout ${values.timeout}: expected a number of milliseconds`);
  const config = loadCliConfig(io, { config: values.config, listen: values.listen });
  const url = healthzUrl(config.listen, config.tls !== undefined);
  let status: number;
  try {
    status = await get(url, timeoutMs);
  } catch (err) {
    io.stderr.write(`wharf: healthcheck: ${url}: ${(err as Error).message}\n`);
    return 1;
  }
  if (status !== 200) {
    io.stderr.write(`wharf: healthcheck: ${url}: HTTP ${status}\n`);
    return 1;
  }
  io.stdout.write(`${url}: ok\n`);
  return 0;
}

export const healthcheckCommand: Command = { name: 'healthcheck', help, run: healthcheck };
