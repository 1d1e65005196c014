// `wharf gc`: one collection on the configured store, also while a server runs on it.
import { parseArgs } from 'node:util';
import type { GcReport } from '../gc/collector.js';
import { printHelp, UsageError, type CliIo, type Command, type CommandHelp } from './command.js';
import { storeOptions, withStores } from './stores.js';
import { changeSignalPath } from '../storage/paths.js';

const help: CommandHelp[] = [
  {
    name: 'gc',
    synopsis: '[--config FILE] [--data DIR] [--dry-run] [--json]',
    text: `Run one garbage collection on the data directory, by the gc.* and cache.*
settings; safe while serve runs on it. --dry-run reports what would be deleted
and deletes nothing; --json prints the report as JSON.`,
  },
];

async function gc(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...storeOptions, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return printHelp(io, help, 'gc');
  if (positionals.length > 0) throw new UsageError(`gc takes no arguments, got '${positionals[0]}'`);
  const { GarbageCollector, GcBusyError } = await import('../gc/collector.js');
  const { gcOptionsFrom } = await import('../gc/options.js');
  const { BlobLedger } = await import('../ledger/blob-ledger.js');
  const { ChangeSignal } = await import('../metadata/change-signal.js');
  return withStores(io, values, async ({ config, metadata, uploads, gc, blobs }) => {
    // A server running on the store drops the removed manifests it holds in memory.
    const changes = new ChangeSignal(changeSignalPath(config.storage.path));
    const manifestsRemoved = (): void => {
      try {
        changes.bump();
      } catch (err) {
        io.stderr.write(`wharf: warning: a server on this store may keep serving removed manifests from memory until restarted: ${(err as Error).message}\n`);
      }
    };
    const collector = new GarbageCollector({ gc, uploads }, new BlobLedger(metadata, blobs, gc), { manifestsRemoved });
    let report: GcReport;
    try {
      report = await collector.run(gcOptionsFrom(config, values['dry-run'] === true));
    } catch (err) {
      if (err instanceof GcBusyError) {
        io.stderr.write(`wharf: ${err.message}; try again when it has finished\n`);
        return 1;
      }
      throw err;
    }
    io.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatGcReport(report));
    return 0;
  });
}

function formatGcReport(r: GcReport): string {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  const verb = r.dryRun ? 'would delete' : 'deleted';
  return [
    `${r.dryRun ? 'dry run: nothing was deleted' : 'collection finished'} in ${r.durationMs} ms`,
    `  manifests ${verb}: ${r.manifestsDeleted} (evicted by age ${r.evictedByAge}, by size ${r.evictedBySize})`,
    `  tags ${verb}:      ${r.tagsDeleted}`,
    `  blobs ${verb}:     ${r.blobsDeleted}`,
    `  uploads ${verb}:   ${r.uploadsDeleted}`,
    `  orphan files:       ${r.orphanFilesRemoved}`,
    `  bytes reclaimed:    ${r.bytesReclaimed} (${mib(r.bytesReclaimed)})`,
    `  bytes kept:         ${r.bytesKept} (${mib(r.bytesKept)})`,
    '',
  ].join('\n');
}

export const gcCommand: Command = { name: 'gc', help, run: gc };
