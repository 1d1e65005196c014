// The mirror benchmark's table: medians with their min-max spread, a ratio to the figure a target is
// relative to, the target and whether the median (or, for peaks, the maximum) meets it.

export interface Stats {
  count: number;
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  const median = s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  return { count: s.length, median, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, values };
}

export interface Row {
  figure: string;
  w?: Stats;
  r?: Stats;
  n?: Stats;
  /** What the ratio column divides Wharf's median by. */
  vs?: number;
  target?: string;
  /** undefined: no target on this row, or not applicable. */
  met?: boolean | undefined;
  note?: string;
  /** Free text for the three server columns instead of figures. */
  text?: [string, string, string];
}

function cell(s: Stats | undefined): string {
  if (!s || s.count === 0) return '—';
  const f = (x: number) => String(Math.round(x * 100) / 100);
  return s.count === 1 || s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

export function formatTable(rows: Row[]): string {
  const head = ['figure', 'wharf', 'reference', 'nginx', 'ratio', 'target', 'met?'];
  const body = rows.map((r) => {
    const ratio = r.vs !== undefined && r.w && r.w.count && r.vs > 0 ? `${(r.w.median / r.vs).toFixed(2)}x` : '';
    const met = r.met === undefined ? (r.note ?? '') : r.met ? 'yes' : 'NO';
    return [r.figure, ...(r.text ?? [cell(r.w), cell(r.r), cell(r.n)]), ratio, r.target ?? '', met];
  });
  const widths = head.map((_, i) => Math.max(...[head, ...body].map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
