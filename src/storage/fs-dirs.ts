// Small filesystem helpers shared by the filesystem blob store's modules (errors by code, listings).
import { readdir } from 'node:fs/promises';

export const isCode = (err: unknown, code: string): boolean => (err as NodeJS.ErrnoException | undefined)?.code === code;
export const isNotFound = (err: unknown): boolean => isCode(err, 'ENOENT');

/** A directory's entries in code-unit order; none when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return [];
    throw err;
  }
}
