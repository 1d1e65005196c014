// How the commands load the configuration, as `serve` does: FILE (or $WHARF_CONFIG), then WHARF_*
// variables, then their flags.
import { loadConfig, type LoadOptions } from '../config/load.js';
import type { WharfConfig } from '../config/schema.js';
import type { CliIo } from './command.js';

export interface ConfigFlags {
  config?: string;
  listen?: string;
  data?: string;
}

const configFile = (io: CliIo, flags: { config?: string }): string | undefined => flags.config ?? (io.env.WHARF_CONFIG || undefined);

/** Warnings go to stderr, each once per process (verify-config loads several files with one environment). */
export function warner(io: CliIo): (message: string) => void {
  const said = new Set<string>();
  return (message) => {
    if (said.has(message)) return;
    said.add(message);
    io.stderr.write(`wharf: warning: ${message}\n`);
  };
}

/** How every command that runs against a data directory loads its configuration: file, WHARF_*, flags. */
export function loadOptions(io: CliIo, flags: ConfigFlags): LoadOptions {
  return {
    file: configFile(io, flags),
    env: io.env,
    overrides: { listen: flags.listen, storage: { path: flags.data } },
    warn: warner(io),
  };
}

/** The configuration, loaded only (serve and verify-config run checkConfig, which checks further). */
export function loadCliConfig(io: CliIo, flags: ConfigFlags): WharfConfig {
  return loadConfig(loadOptions(io, flags));
}
