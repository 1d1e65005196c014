// `wharf serve`: check everything, bind the socket, build the app, listen until a signal.
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { formatHostPort, parseListen } from '../config/listen.js';
import { routingSummary } from '../config/routing-summary.js';
import { bindListenSocket } from '../http/listen-socket.js';
import { helpOption, printHelp, type CliIo, type Command, type CommandHelp } from './command.js';
import { loadOptions } from './config.js';
import { get } from 'node:http';
import { get as httpsGet } from 'node:https';
import { onSignal, shutDown } from './lifecycle.js';
import { checkConfig } from './preflight.js';
import { logFormatOf, serveLog } from './serve-log.js';

const help: CommandHelp[] = [
  {
    name: 'serve',
    synopsis: '[--config FILE] [--listen HOST:PORT] [--data DIR]',
    text: `Run the registry. Settings come from FILE (default: $WHARF_CONFIG, if set),
then WHARF_* environment variables, then these flags, each overriding the last.
WHARF_* variables that name no key are ignored, with one warning.
Checks the configuration, the files it names and the data directory first, and
creates nothing unless they pass. Prints how names are routed, then
"listening on http://HOST:PORT" (https with tls) once it serves, as log lines
in log.format (JSON objects unless standard output is a terminal); a connection
made after the port was bound is answered then.
On SIGTERM or SIGINT, stops accepting connections and lets in-flight requests
finish; after shutdownTimeoutMs it exits anyway, with status 1.`,
  },
];

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...helpOption,
      config: { type: 'string', short: 'c' },
      listen: { type: 'string', short: 'l' },
      data: { type: 'string', short: 'd' },
    },
    allowPositionals: false,
    strict: true,
  });
  if (values.help) return printHelp(io, help, 'serve');
  // Everything verify-config checks, before anything is created.
  const config = await checkConfig(loadOptions(io, values));
  const { host, port } = parseListen(config.listen);
  // Then the socket, still before anything is created: a port in use or not allowed is said at once,
  // and leaves no store behind. The server adopts this socket (no second bind that could fail).
  const socket = await bindListenSocket(host, port);

  let app: FastifyInstance;
  try {
    // Loaded here, not at the top: verify-config and print-schema need neither fastify nor the database.
    const { buildApp } = await import('../app.js');
    app = await buildApp(config, { warmUpstreams: true });
  } catch (err) {
    await socket.close();
    throw err;
  }
  // In the log's format: standard output stays one JSON object per line when the log is JSON.
  const say = serveLog(io.stdout, logFormatOf(config.log.format, io.stdout));
  say(routingSummary(config));

  // Listening for signals before the socket is open: a SIGTERM during start-up still closes cleanly.
  const firstSignal = onSignal();
  try {
    // `handle`: node's listen() takes over the bound socket; fastify passes its options through.
    const options = { host, handle: socket.handle };
    await app.listen(options);
    // Connections made during start-up were held, unread: the server answers them now.
    socket.handOver(app.server);
  } catch (err) {
    firstSignal.dispose();
    await app.close();
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  await selfProbe(address, config.tls !== undefined);
  const url = `${config.tls ? 'https' : 'http'}://${formatHostPort(address.address, address.port)}`;
  say(`listening on ${url}`, { url });

  const signal = await firstSignal.received;
  firstSignal.dispose();
  return shutDown(app, signal, config.shutdownTimeoutMs, io, say);
}

export const serveCommand: Command = { name: 'serve', help, run: serve };

/** Longest the start-up request to ourselves may take; it is only a head start. */
const SELF_PROBE_MS = 1000;

/**
 * One GET /v2/ to ourselves over loopback before "listening on": the first client's request would
 * otherwise run the server's connection, parsing, routing and logging code cold (measured: a fresh
 * process's first cold blob byte 37 -> 23 ms, medians of 3; the event loop blocked ~8 ms before it even accepted
 * that connection). Never throws.
 */
async function selfProbe(address: AddressInfo, tls: boolean): Promise<void> {
  const host = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  await new Promise<void>((resolve) => {
    // Over TLS to ourselves on loopback: the certificate is for the name clients use, not checked here.
    const req = (tls ? httpsGet : get)({ host, port: address.port, path: '/v2/', agent: false, timeout: SELF_PROBE_MS, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.once('end', resolve).once('close', resolve).once('error', () => resolve());
    });
    req.once('timeout', () => req.destroy()).once('error', () => resolve());
  });
}
