// `wharf print-schema`: the JSON schema of the configuration file.
import { parseArgs } from 'node:util';
import { ConfigSchema } from '../config/schema.js';
import { helpOption, printHelp, type CliIo, type Command, type CommandHelp } from './command.js';

const help: CommandHelp[] = [{ name: 'print-schema', synopsis: '', text: 'Print the JSON schema of the configuration file.' }];

function printSchema(args: string[], io: CliIo): number {
  const { values } = parseArgs({ args, options: helpOption, allowPositionals: false, strict: true });
  if (values.help) return printHelp(io, help, 'print-schema');
  io.stdout.write(`${JSON.stringify(ConfigSchema, null, 2)}\n`);
  return 0;
}

export const printSchemaCommand: Command = { name: 'print-schema', help, run: printSchema };
