// What every command module is: its name, its help entries (beside its code) and how it runs; and the
// pieces they all use (the I/O they write to, usage errors, --help).
import { ConfigKeyError } from '../config/key-error.js';

export interface Output {
  write(chunk: string): unknown;
}

export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
}

/** One entry of the help: a command, or one subcommand of it. */
export interface CommandHelp {
  /** `token create`: what follows `wharf` before the options. */
  name: string;
  /** The options, as they are typed (continuation lines indented to line up). */
  synopsis: string;
  text: string;
}

export interface Command {
  /** What follows `wharf`: `serve`, `token`. */
  name: string;
  /** Other spellings (`--version`, `-V`). */
  aliases?: readonly string[];
  /** Its entries in `wharf --help` (a command with subcommands has one per subcommand). */
  help: readonly CommandHelp[];
  run(args: string[], io: CliIo): number | Promise<number>;
}

/** Wrong invocation: reported with the usage and exit status 2. */
export class UsageError extends Error {}

export const isParseArgsError = (err: unknown): err is Error =>
  err instanceof Error && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');

/** How the entry point prints a failure: one `wharf:` line; a ConfigError lists every violation below it. */
export function formatError(err: unknown): string {
  // A problem with one key's value names the key once, as the violations do.
  if (err instanceof ConfigKeyError) return `wharf: ${err.key}: ${err.message}\n`;
  return `wharf: ${err instanceof Error ? err.message : String(err)}\n`;
}

export const helpOption = { help: { type: 'boolean', short: 'h' } } as const;

const indent = (text: string, by: number) =>
  text
    .split('\n')
    .map((line) => ' '.repeat(by) + line)
    .join('\n');

/** One entry: its synopsis (continuation lines aligned under the first option), then its text. */
export function helpEntry(c: CommandHelp, by: number): string {
  const [first, ...more] = c.synopsis.split('\n').map((l) => l.trim());
  const synopsis = [`${c.name}${first ? ` ${first}` : ''}`, ...more.map((l) => ' '.repeat(c.name.length + 1) + l)];
  return `${indent(synopsis.join('\n'), by)}\n${indent(c.text, by + 4)}\n`;
}

/** The help of `name` among `entries` (`token` gives its three subcommands); undefined for an unknown name. */
export function commandUsage(entries: readonly CommandHelp[], name: string): string | undefined {
  const matching = entries.filter((c) => c.name === name || c.name.startsWith(`${name} `));
  if (matching.length === 0) return undefined;
  return `Usage:\n${matching.map((c) => helpEntry({ ...c, name: `wharf ${c.name}` }, 2)).join('\n')}`;
}

/** Prints the help of `name` from a command's own entries (for its --help flag). */
export function printHelp(io: CliIo, entries: readonly CommandHelp[], name: string): number {
  const text = commandUsage(entries, name);
  if (text === undefined) throw new Error(`no help for '${name}'`);
  io.stdout.write(text);
  return 0;
}
