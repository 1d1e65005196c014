// The command line: thin. It finds the command and runs it; each command (src/cli/<command>.ts) loads
// the configuration and hands it to the same code the tests use, and carries its own help.
import { formatError, isParseArgsError, UsageError, type CliIo, type Command } from './command.js';
import { fsckCommand } from './fsck.js';
import { gcCommand } from './gc.js';
import { healthcheckCommand } from './healthcheck.js';
import { helpCommand, usage } from './help.js';
import { printSchemaCommand } from './print-schema.js';
import { serveCommand } from './serve.js';
import { tokenCommand } from './token.js';
import { verifyConfigCommand } from './verify-config.js';
import { warmCommand } from './warm.js';
import { versionCommand } from './version.js';

export { formatError, type CliIo, type Output } from './command.js';

/** Every command, in the order `wharf --help` lists them. */
const COMMANDS: readonly Command[] = [
  serveCommand,
  verifyConfigCommand,
  tokenCommand,
  gcCommand,
  warmCommand,
  fsckCommand,
  healthcheckCommand,
  printSchemaCommand,
  versionCommand,
  helpCommand(() => COMMANDS),
];

export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  const [name, ...args] = argv;
  try {
    if (name === undefined) {
      io.stderr.write(usage(COMMANDS));
      return 2;
    }
    const command = COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
    if (command === undefined) throw new UsageError(name.startsWith('-') ? `unknown option '${name}'` : `unknown command '${name}'`);
    return await command.run(args, io);
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      // parseArgs' own messages are clear but long; its first sentence is the useful part.
      const message = err.message.replace(/\. To specify a positional argument.*$/s, '');
      io.stderr.write(`wharf: ${message}\nRun 'wharf --help' for usage.\n`);
      return 2;
    }
    io.stderr.write(formatError(err));
    return 1;
  }
}
