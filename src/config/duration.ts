// Durations in configuration: an integer and a unit (500ms, 30s, 5m, 2h, 1d).
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** The schema's pattern for a duration; the loader names strings of this pattern "a duration". */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$';
/** What a duration looks like, for messages: "expected a duration such as ...". */
export const A_DURATION = 'a duration such as 500ms, 30s, 5m, 2h or 1d';

const DURATION = new RegExp(DURATION_PATTERN);

export function parseDuration(value: string): number {
  const m = DURATION.exec(value);
  if (!m) throw notADuration(value);
  return Number(value.slice(0, -m[1]!.length)) * UNIT_MS[m[1] as keyof typeof UNIT_MS];
}

/** The error for a string that is not a duration: `"3w" is not a duration such as ...`. */
export function notADuration(value: string): Error {
  return new Error(`"${value}" is not ${A_DURATION}`);
}
