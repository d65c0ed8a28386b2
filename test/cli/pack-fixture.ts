// What the two `nydusify pack` test files share: the runner, the one-error-line judge and the
// source trees (a base, a layer over it with a whiteout, their merged view, a dict user).
import { cp, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { compareTrees } from '../helpers/compare.js';
import { runOk, type RunResult } from '../helpers/tools.js';
import { prng, writeSourceDir } from '../helpers/tree.js';
import { nydusify as runNydusify, nydusifyOk } from './cli-runner.js';

export const MiB = 1024 * 1024;
const T = 1_600_000_000;

/** `nydusify ARGS` run in `cwd` with a clean environment; `ok` rejects unless it exits 0. */
export function nydusifyIn(work: string) {
  const opts = (cwd: string) => ({ cwd, env: { PATH: process.env.PATH, HOME: work }, timeoutMs: 180_000 });
  const nydusify = (args: readonly string[], cwd = work): Promise<RunResult> => runNydusify(args, opts(cwd));
  const ok = (args: readonly string[], cwd = work): Promise<RunResult> => nydusifyOk(args, opts(cwd));
  return { nydusify, ok };
}

/** The one error line; log lines at info (the build's start) may come before it. */
export function errorLine(r: RunResult): string {
  const lines = r.stderr.toString().trim().split('\n').filter((l) => !/^\[[-0-9 :.+]+\] INFO /.test(l));
  expect(lines, r.stderr.toString()).toHaveLength(1);
  return lines[0]!;
}

export const outputBlobs = async (dir: string): Promise<string[]> => (JSON.parse(await readFile(join(dir, 'output.json'), 'utf8')) as { blobs: string[] }).blobs;

export interface PackSources {
  base: string;
  /** A layer over base: one file replaced, one new, base's big file again, a directory whited out. */
  layer: string;
  /** What base with layer on top must read back as. */
  merged: string;
  /** Shares 3 MiB with base (a chunk dict of base helps it), 512 KiB its own. */
  dictUser: string;
}

export async function makePackSources(work: string): Promise<PackSources> {
  const base = join(work, 'base');
  await writeSourceDir(base, { 'bin/tool': prng(1, 3 * MiB + 5), 'etc/conf': 'a=1\n', 'gone/x': 'x\n', 'lib/big': prng(2, 2 * MiB) }, T);
  const layer = join(work, 'layer');
  await writeSourceDir(layer, { 'etc/conf': 'a=2\n', 'new/file': prng(3, 1 * MiB + 77), 'lib/big-copy': prng(2, 2 * MiB), '.wh.gone': '' }, T);
  const merged = join(work, 'merged');
  await cp(base, merged, { recursive: true, preserveTimestamps: true });
  await rm(join(merged, 'gone'), { recursive: true });
  await cp(layer, merged, { recursive: true, preserveTimestamps: true, force: true });
  await rm(join(merged, '.wh.gone'));
  await runOk('find', [merged, '-exec', 'touch', '-h', '-d', `@${T}`, '{}', '+']);
  const dictUser = join(work, 'dict-user');
  await writeSourceDir(dictUser, { 'opt/tool': prng(1, 3 * MiB + 5), 'opt/own': prng(4, 512 * 1024) }, T);
  return { base, layer, merged, dictUser };
}

/** A tar nydus-image unpack wrote, extracted by GNU tar (owners, modes) next to it, compared with `expected`. */
export async function untarEquals(tarFile: string, expected: string): Promise<void> {
  const root = join(tarFile, '..', 'root');
  await mkdir(root);
  await runOk('tar', ['--numeric-owner', '-p', '-C', root, '-xf', tarFile]);
  expect(await compareTrees(expected, root, { ignoreRootMtime: true })).toEqual([]);
}
