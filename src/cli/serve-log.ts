// The lines `wharf serve` writes itself (how names are routed, "listening on", the signal it got,
// "closed") in the log's format (log.format): JSON lines shaped as pino's when the log is JSON, so
// that standard output stays one JSON object per line for a log collector; pretty lines otherwise.
// They are written whatever log.level: they are the command's own output, and scripts wait for them.
import { hostname } from 'node:os';
import { prettyLine } from '../http/log-pretty.js';
import type { Output } from './command.js';

export type LogFormat = 'json' | 'pretty';

/** log.format, else pretty at a terminal and JSON otherwise (as the server's log decides it). */
export function logFormatOf(configured: LogFormat | undefined, out: Output): LogFormat {
  return configured ?? ((out as { isTTY?: boolean }).isTTY === true ? 'pretty' : 'json');
}

export type ServeLog = (msg: string, fields?: Record<string, unknown>, level?: 'info' | 'warn') => void;

export function serveLog(out: Output, format: LogFormat): ServeLog {
  const host = hostname();
  const colour = (out as { isTTY?: boolean }).isTTY === true;
  return (msg, fields = {}, level = 'info') => {
    const line = JSON.stringify({ level: level === 'warn' ? 40 : 30, time: Date.now(), pid: process.pid, hostname: host, ...fields, msg });
    out.write(format === 'json' ? `${line}\n` : prettyLine(line, colour));
  };
}
