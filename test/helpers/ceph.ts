// A throwaway single-node Ceph cluster with the RADOS Gateway (S3) on 127.0.0.1, for tests that need a
// real S3 server. From Debian's packages (apt-get install ceph-mon ceph-osd radosgw ceph-common; 16.2):
// one monitor, one OSD on memstore (the objects live in the OSD's memory), pools of size 1, no cephx,
// radosgw's beast frontend. Everything lives under a temp dir of its own (config, monitor store, logs,
// admin sockets), with its own fsid and free ports (never Ceph's defaults: another cluster may run),
// and its processes are killed and the dir removed at teardown. Each daemon runs under
// `setpriv --pdeathsig KILL`, so a test process killed without its teardown takes them with it.
//
// Start-up is ~2-3 s: the monitor proposes every 10 ms (`paxos propose interval`, 1 s by default);
// rgw's pools are created before the OSD boots (not by radosgw one at a time, each waiting for its
// PGs); radosgw starts once the OSD is up and its user exists (radosgw-admin before radosgw, so the
// two never race to create the default zone), and its client ticks every 200 ms, so an operation
// sent before a map change is resent then rather than on the 5 s default tick.
import { execFile as execFileCb, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, waitExit } from './docker-registry.js';

const execFile = promisify(execFileCb);

const READY_TIMEOUT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 30_000;
/** Pools radosgw would otherwise create one at a time on its first start (zone "default"). */
const RGW_POOLS = [
  '.rgw.root',
  'default.rgw.control',
  'default.rgw.meta',
  'default.rgw.log',
  'default.rgw.buckets.index',
  'default.rgw.buckets.data',
  'default.rgw.buckets.non-ec',
];

interface Teardownable {
  teardown(fn: () => unknown): void;
}

export interface CephOptions {
  /**
   * radosgw's smallest multipart part but the last (`rgw multipart min part size`; S3's and
   * radosgw's default is 5 MiB): smaller lets tests cross part boundaries with little data.
   */
  minPartSize?: number;
}

export interface CephRgw {
  /** http://127.0.0.1:PORT, radosgw's S3 endpoint. */
  endpoint: string;
  /** Any region signs for radosgw; this one keeps CreateBucket free of a location constraint. */
  region: string;
  /** The keys of an S3 user made for the run. */
  accessKeyId: string;
  secretAccessKey: string;
  /** The cluster's temp dir (config, logs). */
  dir: string;
  /** How long the cluster took to answer S3 (ms). */
  startMs: number;
  /** A new S3 client on the gateway as the run's user; destroyed at teardown. */
  client(): S3Client;
  /** radosgw-admin against this cluster (e.g. ['bucket', 'list']); what it printed. */
  admin(args: string[]): Promise<string>;
  /** Kills the daemons; idempotent (teardown does it too). */
  stop(): Promise<void>;
}

/** Daemons still running and dirs not yet removed: cleaned if the test process exits without its teardown. */
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export async function startCeph(t: Teardownable, opts: CephOptions = {}): Promise<CephRgw> {
  const root = mkdtempSync(join(tmpdir(), 'wharf-ceph-'));
  dirs.add(root);
  const daemons: ChildProcess[] = [];
  const clients: S3Client[] = [];
  const stop = async (): Promise<void> => {
    const running = daemons.splice(0);
    for (const c of running) c.kill('SIGKILL');
    await Promise.all(running.map((c) => waitExit(c, 5_000)));
    for (const c of running) live.delete(c);
  };
  t.teardown(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await stop();
    rmSync(root, { recursive: true, force: true });
    dirs.delete(root);
  });

  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    const dir = join(root, `cluster-${attempt}`);
    try {
      const cluster = await bootCluster(dir, daemons, opts);
      const startMs = Math.round(performance.now() - started);
      return {
        ...cluster,
        dir,
        startMs,
        stop,
        client: () => {
          const client = s3Client(cluster);
          clients.push(client);
          return client;
        },
      };
    } catch (err) {
      await stop();
      // Another process took a port between our probe and the daemon's bind: a fresh cluster on others.
      if (attempt < 3 && /address already in use/i.test(logsOf(dir))) continue;
      // Gone now, not at teardown: a failed start at a test file's top level ends the process first.
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }
}

/** An S3 client for radosgw: path-style URLs, checksums only where S3 requires them (else a streamed PutObject gets 411). */
export function s3Client(cluster: Pick<CephRgw, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>): S3Client {
  return new S3Client({
    endpoint: cluster.endpoint,
    region: cluster.region,
    forcePathStyle: true,
    credentials: { accessKeyId: cluster.accessKeyId, secretAccessKey: cluster.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

type Cluster = Pick<CephRgw, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey' | 'admin'>;

async function bootCluster(dir: string, daemons: ChildProcess[], opts: CephOptions): Promise<Cluster> {
  for (const sub of ['mon', 'osd/0', 'run', 'log', 'rgw']) mkdirSync(join(dir, sub), { recursive: true });
  const monPort = await freePort();
  let rgwPort = await freePort();
  while (rgwPort === monPort) rgwPort = await freePort();
  const fsid = randomUUID();
  const conf = join(dir, 'ceph.conf');
  writeFileSync(conf, cephConf(dir, fsid, monPort, rgwPort, opts));
  const env = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: dir };
  const run = async (cmd: string, args: string[], input?: string): Promise<string> => {
    try {
      const child = execFile(cmd, ['-c', conf, ...args], { env, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
      if (input !== undefined) child.child.stdin?.end(input);
      const { stdout, stderr } = await child;
      // `ceph` says what it did on stderr.
      return `${stdout}${stderr}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${cmd} not found: apt-get install ceph-mon ceph-osd radosgw ceph-common`);
      const e = err as Error & { stderr?: string };
      throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}\n${logsOf(dir)}`, { cause: err });
    }
  };
  const daemon = (cmd: string, args: string[]): ChildProcess => {
    const out = openSync(join(dir, 'log', `${cmd}.out`), 'a');
    try {
      const c = spawn('setpriv', ['--pdeathsig', 'KILL', '--', cmd, '-c', conf, '-f', ...args], { env, stdio: ['ignore', out, out] });
      daemons.push(c);
      live.add(c);
      return c;
    } finally {
      closeSync(out);
    }
  };

  const monmap = join(dir, 'monmap');
  await execFile('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, monmap], { env });
  await run('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', monmap]);
  const mon = daemon('ceph-mon', ['-i', 'a']);
  // One `ceph` process (Python, ~0.4 s to start) reads every command from stdin.
  const osdUuid = randomUUID();
  const commands = [`osd new ${osdUuid}`, ...RGW_POOLS.flatMap((p) => [`osd pool create ${p} 8`, `osd pool application enable ${p} rgw`])];
  const said = await run('ceph', ['--connect-timeout', '20'], `${commands.join('\n')}\n`);
  const created = said.split('\n').filter((l) => / created$/.test(l)).length;
  if (created !== RGW_POOLS.length) throw new Error(`ceph made ${created} of ${RGW_POOLS.length} pools:\n${said}\n${logsOf(dir)}`);
  await run('ceph-osd', ['-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
  const osd = daemon('ceph-osd', ['-i', '0']);

  // The user's keys are ours to choose; radosgw-admin waits for the OSD to come up.
  const accessKeyId = `WHARF${randomUUID().replace(/-/g, '').slice(0, 15).toUpperCase()}`;
  const secretAccessKey = randomUUID().replace(/-/g, '');
  const admin = (args: string[]): Promise<string> => run('radosgw-admin', ['-n', 'client.admin', ...args]);
  await admin(['user', 'create', '--uid=wharf', '--display-name=wharf', `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`]);
  const rgw = daemon('radosgw', ['-n', 'client.rgw']);

  const cluster: Cluster = { endpoint: `http://127.0.0.1:${rgwPort}`, region: 'us-east-1', accessKeyId, secretAccessKey, admin };
  const client = s3Client(cluster);
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      for (const [name, c] of [['ceph-mon', mon], ['ceph-osd', osd], ['radosgw', rgw]] as const) {
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`${name} exited (${c.exitCode ?? c.signalCode}) during start-up\n${logsOf(dir)}`);
      }
      try {
        await client.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(2_000) });
        return cluster;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`radosgw on ${cluster.endpoint} did not answer ListBuckets within ${READY_TIMEOUT_MS} ms\n${logsOf(dir)}`);
      await sleep(50);
    }
  } finally {
    client.destroy();
  }
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number, opts: CephOptions): string {
  return `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${monPort}]
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
run dir = ${dir}/run
admin socket = ${dir}/run/$name.$pid.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
mon data = ${dir}/mon/$id
osd data = ${dir}/osd/$id
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
paxos propose interval = 0.01
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${1024 * 1024 * 1024}

[client]
auth client required = none
ms mon client mode = crc
objecter tick interval = 0.2

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
rgw thread pool size = 32
rgw enable gc threads = false
rgw enable lc threads = false
rgw enable quota threads = false
${opts.minPartSize !== undefined ? `rgw multipart min part size = ${opts.minPartSize}\n` : ''}`;
}

/** The last lines of every log of the cluster, for an error message. */
function logsOf(dir: string): string {
  const out: string[] = [];
  try {
    for (const name of readdirSync(join(dir, 'log'))) {
      const text = readFileSync(join(dir, 'log', name), 'utf8').split('\n').slice(-15).join('\n');
      if (text.trim()) out.push(`--- ${name}\n${text}`);
    }
  } catch {
    // No logs yet.
  }
  return out.join('\n');
}
