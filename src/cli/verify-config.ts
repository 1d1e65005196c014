// `wharf verify-config`: each file checked as `serve --config FILE` would check it before starting.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { helpOption, printHelp, UsageError, type CliIo, type Command, type CommandHelp } from './command.js';
import { warner } from './config.js';
import { checkConfig } from './preflight.js';

const help: CommandHelp[] = [
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
];

/** Checks each file as `serve --config FILE` would before starting: the same load, the same preflight. */
async function verifyConfig(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: helpOption, allowPositionals: true, strict: true });
  if (values.help) return printHelp(io, help, 'verify-config');
  const files = positionals.length > 0 ? positionals : [io.env.WHARF_CONFIG].filter((f): f is string => Boolean(f));
  if (files.length === 0) throw new UsageError('verify-config needs a FILE (or WHARF_CONFIG)');
  const warn = warner(io);
  let failed = false;
  for (const file of files) {
    let violations: readonly string[] = [];
    try {
      await checkConfig({ file, env: io.env, warn });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      violations = err.violations;
    }
    if (violations.length === 0) io.stdout.write(`${file}: ok\n`);
    failed ||= violations.length > 0;
    for (const v of violations) io.stderr.write(`${file}: ${v}\n`);
  }
  return failed ? 1 : 0;
}

export const verifyConfigCommand: Command = { name: 'verify-config', help, run: verifyConfig };
