// The command line's help: one entry per command, so that `wharf --help` lists every command and
// `wharf <command> --help` shows that command alone, from the same text.
import { readFileSync } from 'node:fs';

interface CommandHelp {
  /** `token create`: what follows `wharf` before the options. */
  name: string;
  /** The options, as they are typed (continuation lines indented to line up). */
  synopsis: string;
  text: string;
}

const COMMANDS: readonly CommandHelp[] = [
  {
    name: 'serve',
    synopsis: '[--config FILE] [--listen HOST:PORT] [--data DIR]',
    text: `Run the registry. Settings come from FILE (default: $WHARF_CONFIG, if set),
then WHARF_* environment variables, then these flags, each overriding the last.
WHARF_* variables that name no key are ignored, with one warning.
Checks the configuration, the files it names and the data directory first, and
creates nothing unless they pass. Prints how names are routed, then
"listening on http://HOST:PORT" once it accepts connections.
On SIGTERM or SIGINT, stops accepting connections and lets in-flight requests
finish; after shutdownTimeoutMs it exits anyway, with status 1.`,
  },
  {
    name: 'verify-config',
    synopsis: '[FILE...]',
    text: `Check configuration files exactly as serve would check them before starting:
with the WHARF_* environment, the files they name (passwordFile, passwordEnv,
auth.htpasswd, token keys), the listen host (not its port: a running server
may hold it) and the data directory, an existing store in every part Wharf
writes. Without FILE, $WHARF_CONFIG.
Prints "FILE: ok", or every problem, one per line, and exits with status 1.`,
  },
  {
    name: 'token create',
    synopsis: `--name NAME --scope GLOB[,GLOB...]:ACTION[,ACTION...] [--scope ...]
               [--expires DURATION] [--config FILE] [--data DIR] [--json]`,
    text: `Create a service token for automation and print it once: only a hash is kept,
it cannot be shown again. Use it as the password with NAME as the user name
(skopeo --creds NAME:TOKEN). ACTION is pull, push, delete or * (all three);
in a GLOB, * matches within one path component and ** across components.
DURATION is e.g. 12h or 90d; without --expires the token does not expire.`,
  },
  {
    name: 'token list',
    synopsis: '[--config FILE] [--data DIR] [--json]',
    text: 'List the service tokens (never their secrets), revoked and expired ones too.',
  },
  {
    name: 'token revoke',
    synopsis: 'ID|NAME [--config FILE] [--data DIR]',
    text: `Revoke a token by id, or by the name of a token not yet revoked; it stops
working at once. The token commands read the configuration as serve does and
may run while it serves the same data directory.`,
  },
  {
    name: 'gc',
    synopsis: '[--config FILE] [--data DIR] [--dry-run] [--json]',
    text: `Run one garbage collection on the data directory, by the gc.* and cache.*
settings; safe while serve runs on it. --dry-run reports what would be deleted
and deletes nothing; --json prints the report as JSON.`,
  },
  {
    name: 'fsck',
    synopsis: '[--config FILE] [--data DIR] [--json]',
    text: `Check that the metadata and the blob files of the data directory agree: prints
"ok", or each difference, one per line, and exits with status 1.`,
  },
  {
    name: 'healthcheck',
    synopsis: '[--config FILE] [--listen HOST:PORT] [--timeout MS]',
    text: `Ask GET /healthz where the configuration (read as serve reads it) listens;
exit status 0 when it answers 200 (the container image's HEALTHCHECK).`,
  },
  { name: 'print-schema', synopsis: '', text: 'Print the JSON schema of the configuration file.' },
  { name: 'version', synopsis: '', text: 'Print the version (also --version).' },
  { name: 'help', synopsis: '[COMMAND]', text: 'Print this text, or the help of one command (also --help).' },
];

const indent = (text: string, by: number) =>
  text
    .split('\n')
    .map((line) => ' '.repeat(by) + line)
    .join('\n');

/** One command: its synopsis (continuation lines aligned under the first option), then its text. */
function entry(c: CommandHelp, by: number): string {
  const [first, ...more] = c.synopsis.split('\n').map((l) => l.trim());
  const synopsis = [`${c.name}${first ? ` ${first}` : ''}`, ...more.map((l) => ' '.repeat(c.name.length + 1) + l)];
  return `${indent(synopsis.join('\n'), by)}\n${indent(c.text, by + 4)}\n`;
}

export const USAGE = `Usage: wharf <command> [options]

Commands:
${COMMANDS.map((c) => entry(c, 2)).join('')}
Every command takes --help. The commands that use a data directory (gc, fsck,
token) need one that serve has created; they never create an empty store.
`;

/** The help of one command (`token` gives its three subcommands); undefined for an unknown name. */
export function commandUsage(name: string): string | undefined {
  const entries = COMMANDS.filter((c) => c.name === name || c.name.startsWith(`${name} `));
  if (entries.length === 0) return undefined;
  return `Usage:\n${entries.map((c) => entry({ ...c, name: `wharf ${c.name}` }, 2)).join('\n')}`;
}

/** The version in package.json (one directory above src/ and dist/ alike). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
