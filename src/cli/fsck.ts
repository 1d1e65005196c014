// `wharf fsck`: checks that metadata and blob files agree; exit 1 when they do not.
import { parseArgs } from 'node:util';
import { printHelp, UsageError, type CliIo, type Command, type CommandHelp } from './command.js';
import { storeOptions, withMetadata } from './stores.js';

const help: CommandHelp[] = [
  {
    name: 'fsck',
    synopsis: '[--config FILE] [--data DIR] [--json]',
    text: `Check that the metadata and the blob files of the data directory agree: prints
"ok", or each difference, one per line, and exits with status 1.`,
  },
];

async function runFsck(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...storeOptions, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (values.help) return printHelp(io, help, 'fsck');
  if (positionals.length > 0) throw new UsageError(`fsck takes no arguments, got '${positionals[0]}'`);
  const { fsck } = await import('../gc/fsck.js');
  return withMetadata(io, values, async (config, { gc }) => {
    // A filesystem store is looked at as it is, creating nothing; a bucket is opened as serve opens it.
    const blobs = config.storage.s3
      ? await (await import('../storage/open-blob-store.js')).openBlobStore(config.storage)
      : (await import('../storage/fs-blob-store.js')).FsBlobStore.existing(config.storage.path);
    const result = await fsck(gc, blobs);
    if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
    else if (result.ok) io.stdout.write('ok: metadata and blob files agree\n');
    else {
      const lines = [
        ...result.missingFiles.map((d) => `missing file: ${d}`),
        ...result.orphanFiles.map((d) => `orphan file: ${d}`),
        ...result.danglingReferences.map((d) => `dangling reference: ${d}`),
        ...result.badTags.map((d) => `bad tag: ${d}`),
      ];
      io.stdout.write(`${lines.join('\n')}\n`);
    }
    return result.ok ? 0 : 1;
  });
}

export const fsckCommand: Command = { name: 'fsck', help, run: runFsck };
