// `wharf version` (also --version, -V): the version in package.json.
import { readFileSync } from 'node:fs';
import type { CliIo, Command } from './command.js';

/** The version in package.json (two directories above src/cli/ and dist/cli/ alike). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const versionCommand: Command = {
  name: 'version',
  aliases: ['--version', '-V'],
  help: [{ name: 'version', synopsis: '', text: 'Print the version (also --version).' }],
  run: (_args: string[], io: CliIo) => {
    io.stdout.write(`wharf ${version()}\n`);
    return 0;
  },
};
