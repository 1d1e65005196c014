// Durations in configuration: an integer and a unit (500ms, 30s, 5m, 2h, 1d).
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function parseDuration(value: string): number {
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(value);
  if (!m) throw new Error(`"${value}" is not a duration (e.g. 500ms, 30s, 5m, 2h, 1d)`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}
