// Process entry point (bin/wharf.js imports the compiled copy): the one place that touches
// process.argv, process.env and the exit status.
import { formatError, main } from './cli/index.js';

// The AWS SDK (storage.s3) warns once, as a process warning on stderr, that its releases after January
// 2027 need Node 22: not a log line, and nothing to act on for an operator of this release. The SDK's own
// switch (read when a client is made, so set before any is) turns it off; a value set outside stays.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).catch(
  (err: unknown) => {
    process.stderr.write(formatError(err));
    return 1;
  },
);
process.exitCode = code;

// Once main has resolved, the work is done: the server is closed, output written. Exit even if
// something forgot to release a handle (a timer, a socket), rather than hang until SIGKILL.
setTimeout(() => process.exit(code), 2000).unref();
