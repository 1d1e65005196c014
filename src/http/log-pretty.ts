// log.format: pretty (issue 13): pino's JSON lines turned into one readable line each, for a person
// at a terminal: time, level, component, message, then the other fields as key=value.
//   13:07:45.123 INFO  request reqId=req-1 client=127.0.0.1 method=GET route=manifest status=200 ms=0
// Written here rather than taken from pino-pretty: that package brings a dozen dependencies (and
// runs as a worker-thread transport) for what is a few lines over our own, known line shape. JSON
// stays the format for anything that is not a terminal: log collectors parse it.

interface Destination {
  write(line: string): void;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const COLOURS: Record<number, string> = { 10: '\x1b[90m', 20: '\x1b[36m', 30: '\x1b[32m', 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[35m' };
const RESET = '\x1b[0m';
/** Fields every line has, or that are shown in their own place. */
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component', 'v']);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

function time(ms: unknown): string {
  const d = typeof ms === 'number' ? new Date(ms) : new Date();
  return d.toISOString().slice(11, 23);
}

/** One pino JSON line as a readable line (the line as it came when it is not JSON). */
export function prettyLine(line: string, colour = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const level = typeof o.level === 'number' ? o.level : 30;
  const name = LEVELS[level] ?? String(level);
  const parts = [time(o.time), colour ? `${COLOURS[level] ?? ''}${name}${RESET}` : name];
  if (typeof o.component === 'string') parts.push(`[${o.component}]`);
  if (typeof o.msg === 'string') parts.push(o.msg);
  let stack: string | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (SKIP.has(k) || v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { message?: unknown; stack?: unknown };
      parts.push(`err=${value(e.message)}`);
      if (typeof e.stack === 'string' && level >= 50) stack = e.stack;
      continue;
    }
    parts.push(`${k}=${value(v)}`);
  }
  return `${parts.join(' ')}\n${stack ? `${stack.replace(/^/gm, '    ')}\n` : ''}`;
}

/** A pino destination writing pretty lines to `inner`. */
export class PrettyDestination {
  constructor(
    private readonly inner: Destination,
    private readonly colour = false,
  ) {}

  write(line: string): void {
    // pino writes one line per call; a buffered destination may join several.
    if (line.indexOf('\n') === line.length - 1 || !line.includes('\n')) {
      this.inner.write(prettyLine(line.trimEnd(), this.colour));
      return;
    }
    this.inner.write(
      line
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => prettyLine(l, this.colour))
        .join(''),
    );
  }
}
