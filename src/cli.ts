// The command line: thin. It loads configuration and hands it to the same code the tests use.
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { formatHostPort, parseListen } from './config/listen.js';
import { ConfigError, loadConfig } from './config/load.js';
import { ConfigSchema } from './config/schema.js';

export interface Output {
  write(chunk: string): unknown;
}

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
}

export const USAGE = `Usage: wharf <command> [options]

Commands:
  serve [--config FILE] [--listen HOST:PORT] [--data DIR]
      Run the registry. Settings come from FILE (default: $WHARF_CONFIG, if set),
      then WHARF_* environment variables, then these flags, each overriding the last.
      Prints "listening on http://HOST:PORT" once it accepts connections.
      On SIGTERM or SIGINT, stops accepting connections and lets in-flight requests
      finish; after shutdownTimeoutMs it exits anyway, with status 1.
  verify-config FILE...
      Check configuration files on their own (WHARF_* variables are not applied):
      prints "FILE: ok", or every problem, one per line, and exits with status 1.
  print-schema
      Print the JSON schema of the configuration file.
  help, --help
      Print this text.
`;

/** Wrong invocation: reported with the usage and exit status 2. */
class UsageError extends Error {}

const isParseArgsError = (err: unknown): err is Error =>
  err instanceof Error && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');

/** How the entry point prints a failure: one `wharf:` line; a ConfigError lists every violation below it. */
export function formatError(err: unknown): string {
  return `wharf: ${err instanceof Error ? err.message : String(err)}\n`;
}

export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case undefined:
        io.stderr.write(USAGE);
        return 2;
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE);
        return 0;
      case 'serve':
        return await serve(args, io);
      case 'verify-config':
        return verifyConfig(args, io);
      case 'print-schema':
        return printSchema(args, io);
      default:
        throw new UsageError(command.startsWith('-') ? `unknown option '${command}'` : `unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      // parseArgs' own messages are clear but long; its first sentence is the useful part.
      const message = err.message.replace(/\. To specify a positional argument.*$/s, '');
      io.stderr.write(`wharf: ${message}\nRun 'wharf --help' for usage.\n`);
      return 2;
    }
    io.stderr.write(formatError(err));
    return 1;
  }
}

const helpOption = { help: { type: 'boolean', short: 'h' } } as const;

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
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const config = loadConfig({
    file: values.config ?? (io.env.WHARF_CONFIG || undefined),
    env: io.env,
    overrides: { listen: values.listen, storage: { path: values.data } },
  });
  const { host, port } = parseListen(config.listen);

  // Loaded here, not at the top: verify-config and print-schema need neither fastify nor the database.
  const { buildApp } = await import('./app.js');
  const app = await buildApp(config);

  // Listening for signals before the socket is open: a SIGTERM during start-up still closes cleanly.
  const firstSignal = onSignal();
  try {
    await app.listen({ host, port });
  } catch (err) {
    firstSignal.dispose();
    await app.close();
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  io.stdout.write(`listening on http://${formatHostPort(address.address, address.port)}\n`);

  const signal = await firstSignal.received;
  firstSignal.dispose();
  return shutDown(app, signal, config.shutdownTimeoutMs, io);
}

interface Closable {
  close(): Promise<unknown>;
  server: { closeAllConnections(): void };
}

async function shutDown(app: Closable, signal: string, timeoutMs: number, io: CliIo): Promise<number> {
  io.stdout.write(`${signal} received: closing, in-flight requests have ${timeoutMs} ms to finish\n`);
  const closing = app.close().then(
    () => ({ outcome: 'closed' as const }),
    (error: unknown) => ({ outcome: 'failed' as const, error }),
  );
  // A second signal means "now": the operator is not waiting for the timeout.
  const again = onSignal();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<{ outcome: 'timeout' }>((resolve) => {
    timer = setTimeout(() => resolve({ outcome: 'timeout' }), timeoutMs);
  });
  const result = await Promise.race([
    closing,
    timedOut,
    again.received.then((s) => ({ outcome: 'signal' as const, signal: s })),
  ]);
  clearTimeout(timer);
  again.dispose();

  switch (result.outcome) {
    case 'closed':
      io.stdout.write('closed\n');
      return 0;
    case 'failed':
      io.stderr.write(formatError(result.error));
      return 1;
    case 'timeout':
    case 'signal': {
      const why = result.outcome === 'timeout' ? `still busy after ${timeoutMs} ms` : `${result.signal} received again`;
      io.stderr.write(`wharf: ${why}: dropping the remaining connections\n`);
      // Dropping the sockets lets close() run its onClose hooks (the database); bounded all the same.
      app.server.closeAllConnections();
      await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      return 1;
    }
  }
}

/** The next SIGTERM or SIGINT; while listening, neither kills the process. */
function onSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
  let handler: (s: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    handler = resolve;
  });
  for (const s of signals) process.on(s, handler);
  return { received, dispose: () => signals.forEach((s) => process.off(s, handler)) };
}

function verifyConfig(args: string[], io: CliIo): number {
  const { values, positionals } = parseArgs({ args, options: helpOption, allowPositionals: true, strict: true });
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('verify-config needs a FILE');
  let failed = false;
  for (const file of positionals) {
    try {
      loadConfig({ file });
      io.stdout.write(`${file}: ok\n`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      failed = true;
      for (const v of err.violations) io.stderr.write(`${file}: ${v}\n`);
    }
  }
  return failed ? 1 : 0;
}

function printSchema(args: string[], io: CliIo): number {
  const { values } = parseArgs({ args, options: helpOption, allowPositionals: false, strict: true });
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  io.stdout.write(`${JSON.stringify(ConfigSchema, null, 2)}\n`);
  return 0;
}
