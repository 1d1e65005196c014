// Sizes in configuration: a number of bytes, or a number and a unit (500MiB, 10GiB, 1.5TB).
const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

/** The schema's pattern for a size written as a string; the loader names such values "a size". */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([KMGT]i?B|B)?$';
const SIZE_RE = new RegExp(SIZE_PATTERN);
/** What a size looks like, for messages: "expected a size ...". */
export const A_SIZE = 'a size such as 1048576 (bytes), 500MiB, 10GiB or 1TB';

export function parseSize(value: number | string): number {
  if (typeof value === 'number') return value;
  const m = SIZE_RE.exec(value.trim());
  const factor = m ? UNITS[m[2] ?? 'B'] : undefined;
  if (!m || factor === undefined) throw new Error(`"${value}" is not ${A_SIZE}`);
  return Math.floor(Number.parseFloat(value.trim()) * factor);
}
