// Child processes for the benchmarks: scopes that tear down what they started (in reverse order, even
// on failure), every child killed with its process group if the benchmark itself exits, bounded
// command runs, and bounded polling.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/** Children still running; SIGKILLed (with their process group when they lead one) if we exit first. */
const live = new Map<ChildProcess, boolean>();
process.once('exit', () => {
  for (const [child, group] of live) killChild(child, 'SIGKILL', group);
});

function killChild(child: ChildProcess, signal: NodeJS.Signals, group: boolean): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    // nginx's workers outlive a SIGKILLed master: a detached child leads a group, and the group goes.
    if (group) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    // already gone
  }
}

/** Spawns and tracks `cmd`; `group` puts it in its own process group (detached) so that it dies whole. */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions & { group?: boolean } = {}): ChildProcess {
  const { group = false, ...rest } = opts;
  const child = spawn(cmd, args, { ...rest, detached: group });
  live.set(child, group);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/** Whether `child` exited within `ms`. */
export function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** `signal` (SIGTERM), then SIGKILL after `ms`; resolves once the child has exited (bounded). */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', ms = 5_000): Promise<void> {
  const group = live.get(child) ?? false;
  killChild(child, signal, group);
  if (await exited(child, ms)) return;
  killChild(child, 'SIGKILL', group);
  await exited(child, 5_000);
}

/** Teardown functions run in reverse order by close(); one failing does not stop the others. */
export class Scope {
  private readonly fns: Array<() => unknown> = [];

  teardown(fn: () => unknown): void {
    this.fns.push(fn);
  }

  async close(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`teardown: ${(err as Error).message}`);
      }
    }
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, seconds. */
  seconds: number;
}

/** Runs `cmd` to completion (SIGKILL after `timeoutMs`), collecting its output as text. */
export async function run(cmd: string, args: string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<RunResult> {
  const t0 = performance.now();
  const child = spawnTracked(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-1_000_000)));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-100_000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  return { code, stdout, stderr, seconds: (performance.now() - t0) / 1000 };
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, for at most `ms`. */
export async function poll<T>(check: () => T | undefined | Promise<T | undefined>, ms: number, everyMs = 20): Promise<T | undefined> {
  const deadline = performance.now() + ms;
  for (let i = 0; i < 1_000_000; i++) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() >= deadline) return undefined;
    await sleep(everyMs);
  }
  return undefined;
}
