// Spawns the built CLI (bin/nydus-image.js, after `tsc` and `oclif manifest`) the way users do.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runOk, type RunOptions, type RunResult } from '../helpers/tools.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(REPO, 'bin', 'nydus-image.js');
export const NYDUSIFY = join(REPO, 'bin', 'nydusify.js');
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

/**
 * A fresh work dir for nydusify and the environment to run it in: PATH, HOME = the dir and an
 * empty Docker config, so no credentials and no SOURCE/TARGET flag variables come from the caller.
 */
export async function nydusifyWorkDir(prefix: string): Promise<{ work: string; env: NodeJS.ProcessEnv }> {
  const work = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(join(work, 'docker-config'));
  await writeFile(join(work, 'docker-config', 'config.json'), '{}');
  return { work, env: { PATH: process.env.PATH, HOME: work, DOCKER_CONFIG: join(work, 'docker-config') } };
}

/** Runs `nydusify ARGS`; resolves whatever the exit code. */
export function nydusify(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [NYDUSIFY, ...args], { timeoutMs: 300_000, ...opts });
}

/** Like nydusify, but rejects with the command line and its stderr unless it exits 0. */
export async function nydusifyOk(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await nydusify(args, opts);
  if (r.code !== 0) throw new Error(`nydusify ${args.join(' ')}: exit ${r.code}\n${r.stderr.toString()}`);
  return r;
}

/** `skopeo inspect --raw` (or `--config`) of an image on a plain-http registry, parsed. */
export async function skopeoRaw(ref: string, config = false): Promise<Record<string, any>> {
  const r = await runOk('skopeo', ['inspect', '--raw', ...(config ? ['--config'] : []), '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(r.stdout.toString()) as Record<string, any>;
}
