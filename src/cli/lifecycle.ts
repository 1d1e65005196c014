// The running server's end: the first SIGTERM or SIGINT closes it, letting in-flight requests finish
// within the shutdown timeout; a second signal, or the timeout, drops what remains.
import { formatError, type CliIo } from './command.js';
import type { ServeLog } from './serve-log.js';

interface Closable {
  close(): Promise<unknown>;
  server: { closeAllConnections(): void };
}

/** `say`: where the closing lines go (the log's format); default plain lines on standard output. */
export async function shutDown(app: Closable, signal: string, timeoutMs: number, io: CliIo, say: ServeLog = (msg) => io.stdout.write(`${msg}\n`)): Promise<number> {
  say(`${signal} received: closing, in-flight requests have ${timeoutMs} ms to finish`, { signal });
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
      say('closed');
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
export function onSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
  let handler: (s: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((resolve) => {
    handler = resolve;
  });
  for (const s of signals) process.on(s, handler);
  return { received, dispose: () => signals.forEach((s) => process.off(s, handler)) };
}
