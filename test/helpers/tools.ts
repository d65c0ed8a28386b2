// Outside tools as judges: spawn without a shell, keep output as bytes.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: Buffer | string;
  /** Kill the child (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
}

export interface RunResult {
  /** Exit code, or null when the child died of a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs cmd with args; resolves with its exit status whatever it is, rejects only if it cannot start. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    // A child that exits without reading its stdin must not crash us with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run, but rejects with the command line and its stderr unless the exit code is 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const how = r.code === null ? `signal ${r.signal}` : `exit ${r.code}`;
    throw new Error(`${cmd} ${args.join(' ')}: ${how}\n${r.stderr.toString()}${r.stdout.toString()}`.trimEnd());
  }
  return r;
}

/** Whether an executable of that name is on PATH (or the given path is executable). */
export function hasTool(name: string): boolean {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
        .split(delimiter)
        .filter((d) => d !== '')
        .map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/**
 * fsck.erofs over a bootstrap and its blob devices (in device-table order). --extract without a
 * target makes it decode every file's data, not only the metadata.
 */
export async function fsckErofs(boot: string, devices: readonly string[] = []): Promise<{ ok: boolean; output: string }> {
  const args = [...devices.map((d) => `--device=${d}`), '--extract', boot];
  const r = await run('fsck.erofs', args);
  return { ok: r.code === 0, output: (r.stdout.toString() + r.stderr.toString()).trim() };
}
