// `wharf help [COMMAND]` (also --help, -h): every command's entries, taken from the command modules
// themselves, or one command's.
import { commandUsage, helpEntry, UsageError, type CliIo, type Command } from './command.js';

/** `wharf --help`: each command's entries, in the order of `commands`. */
export function usage(commands: readonly Command[]): string {
  return `Usage: wharf <command> [options]

Commands:
${commands.flatMap((c) => c.help.map((h) => helpEntry(h, 2))).join('')}
Every command takes --help. The commands that use a data directory (gc, fsck,
token) need one that serve has created; they never create an empty store.
`;
}

/** The help command over `commands()` (a function: the list includes this command). */
export function helpCommand(commands: () => readonly Command[]): Command {
  return {
    name: 'help',
    aliases: ['--help', '-h'],
    help: [{ name: 'help', synopsis: '[COMMAND]', text: 'Print this text, or the help of one command (also --help).' }],
    run(args: string[], io: CliIo): number {
      if (args.length === 0) {
        io.stdout.write(usage(commands()));
        return 0;
      }
      const text = commandUsage(
        commands().flatMap((c) => c.help),
        args.join(' '),
      );
      if (text === undefined) throw new UsageError(`no command '${args.join(' ')}'`);
      io.stdout.write(text);
      return 0;
    },
  };
}
