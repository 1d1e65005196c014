// The logging the upstream layer needs: a subset of pino's API, so a pino (or fastify) logger fits as is.
// Messages never carry credentials, tokens or signed URLs.

export interface UpstreamLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const noop = (): void => {};
export const silentLogger: UpstreamLogger = { debug: noop, info: noop, warn: noop };
