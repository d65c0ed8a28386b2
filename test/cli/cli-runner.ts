// Spawns the built CLI (bin/nydus-image.js, after `tsc` and `oclif manifest`) the way users do.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunOptions, type RunResult } from '../helpers/tools.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(REPO, 'bin', 'nydus-image.js');
export { UPSTREAM } from '../helpers/upstream.js';

/** Runs `nydus-image ARGS` from the repository root; resolves whatever the exit code. */
export function nydusImage(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [BIN, ...args], { cwd: REPO, timeoutMs: 300_000, ...opts });
}

/** Like nydusImage, but rejects with the command line and its stderr unless it exits 0. */
export async function nydusImageOk(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await nydusImage(args, opts);
  if (r.code !== 0) {
    throw new Error(`nydus-image ${args.join(' ')}: exit ${r.code ?? r.signal}\n${r.stderr.toString()}${r.stdout.toString()}`.trimEnd());
  }
  return r;
}

/** The ids of the `data blobs: ["…", …]` log line create prints on success. */
export function loggedBlobIds(stderr: Buffer | string): string[] {
  const m = /^data blobs: (\[.*\])$/m.exec(stderr.toString());
  if (!m) throw new Error(`no "data blobs:" line in:\n${stderr.toString()}`);
  return JSON.parse(m[1]!) as string[];
}

/** The one blob id a single-blob build logged. */
export function loggedBlobId(stderr: Buffer | string): string {
  const ids = loggedBlobIds(stderr);
  if (ids.length !== 1 || !/^[0-9a-f]{64}$/.test(ids[0]!)) throw new Error(`expected one blob id, logged ${JSON.stringify(ids)}`);
  return ids[0]!;
}
