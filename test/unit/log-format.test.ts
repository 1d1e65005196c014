// log.format (issue 13): pretty lines from pino's JSON, and an app configured pretty writes nothing
// else; json (the default off a terminal) writes one JSON object per line.
import t from 'tap';
import { PrettyDestination, prettyLine } from '../../src/http/log-pretty.js';

t.test('prettyLine: time, level, component, message, then key=value fields', async (t) => {
  const line = JSON.stringify({ level: 30, time: Date.parse('2026-11-30T13:07:45.123Z'), pid: 1, hostname: 'h', reqId: 'req-1', component: 'upstream', msg: 'upstream request', method: 'GET', status: 200, target: 'http://a b', err: undefined });
  t.equal(prettyLine(line), '13:07:45.123 INFO  [upstream] upstream request reqId=req-1 method=GET status=200 target="http://a b"\n');
  const err = JSON.stringify({ level: 50, time: 0, msg: 'boom', err: { message: 'bad thing', stack: 'Error: bad thing\n    at x' }, detail: { a: 1 } });
  t.equal(prettyLine(err), '00:00:00.000 ERROR boom err="bad thing" detail={"a":1}\n    Error: bad thing\n        at x\n', 'an error level line keeps its stack, indented');
  t.equal(prettyLine('not json'), 'not json\n', 'anything else passes as it came');
  t.ok(prettyLine(JSON.stringify({ level: 40, msg: 'careful' }), true).includes('\u001b[33mWARN \u001b[0m careful'), 'coloured at a terminal');
  const out: string[] = [];
  new PrettyDestination({ write: (s) => out.push(s) }).write(`${JSON.stringify({ level: 30, time: 0, msg: 'a' })}\n${JSON.stringify({ level: 30, time: 0, msg: 'b' })}\n`);
  t.same(out, ['00:00:00.000 INFO  a\n00:00:00.000 INFO  b\n'], 'several lines written at once');
});

t.test('an app with log.format pretty writes pretty lines only; json writes JSON only', async (t) => {
  for (const format of ['pretty', 'json'] as const) {
    const written: string[] = [];
    const stream = { write: (s: string) => void written.push(s) };
    const { buildApp } = await import('../../src/app.js');
    const { withDefaults } = await import('../../src/config/defaults.js');
    const dir = t.testdir({});
    const app = await buildApp(withDefaults({ log: { level: 'info', format }, storage: { path: dir } }), { logStream: stream });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    await (await fetch(`http://127.0.0.1:${port}/v2/`, { headers: { connection: 'close' } })).arrayBuffer();
    await app.close();
    const lines = written.join('').split('\n').filter((l) => l !== '');
    t.ok(lines.length >= 2, `${format}: the warning and the request`);
    const json = lines.filter((l) => l.startsWith('{'));
    if (format === 'pretty') {
      t.same(json, [], 'no JSON among pretty lines');
      t.ok(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} INFO {2}request reqId=req-1 client=127\.0\.0\.1 user=null method=GET route=base url=\/v2\/ status=200 bytes=2 ms=\d+ outcome=completed$/.test(l)), lines.join('\n'));
    } else {
      t.equal(json.length, lines.length, 'every line is JSON');
      for (const l of lines) JSON.parse(l);
    }
  }
});
