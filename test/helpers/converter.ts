// The nydus-snapshotter converter's calls to nydus-image, made as its Go code makes them
// (tar-merge-export.md §9; pkg/converter/tool/builder.go, convert_unix.go): pack argv in its
// order with the layer fed through a FIFO and the blob drained from another, entries taken out
// of a blob through its TOC, merge with stdin "/", unpack into a FIFO. For tests of the builder
// options the converter passes through (--fs-version, --batch-size, --encrypt, ...).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { decompress as zstdDecompress } from 'zstd-napi';
import { run, runOk, type RunResult } from './tools.js';
import { BIN, REPO } from '../cli/cli-runner.js';

export interface ConverterPack {
  fsVersion?: '5' | '6';
  /** Builder options the converter adds after the fixed ones, in its order (e.g. --batch-size S, --encrypt). */
  extra?: string[];
}

/** builder.go buildPackArgs for tar2rafs: the fixed part, the options, the FIFO source last. */
export function packArgv(W: string, o: ConverterPack = {}): string[] {
  const v = o.fsVersion ?? '6';
  return [
    'create', '--log-level', 'warn', '--prefetch-policy', 'fs', '--blob', join(W, 'blob.rafs'), '--whiteout-spec', 'none',
    '--fs-version', v, '--type', 'tar-rafs', '--blob-inline-meta', ...(v === '6' ? ['--features', 'blob-toc'] : []),
    ...(o.extra ?? []), join(W, 'blob.targz'),
  ];
}

function ended(c: ChildProcess): Promise<number | null> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode);
  return new Promise((resolve) => c.once('close', resolve));
}

/** Runs `argv` while `dd` copies `input` into the FIFO `into` and drains the FIFO `from` into `drainTo`. */
async function throughFifos(argv: string[], fifos: { into?: [string, string]; from: [string, string] }, stdin: string): Promise<RunResult> {
  const made = [fifos.into?.[1], fifos.from[0]].filter((p): p is string => !!p);
  await runOk('mkfifo', made);
  const procs: ChildProcess[] = [];
  try {
    if (fifos.into) procs.push(spawn('dd', [`if=${fifos.into[0]}`, `of=${fifos.into[1]}`, 'bs=64k', 'status=none'], { stdio: 'ignore' }));
    procs.push(spawn('dd', [`if=${fifos.from[0]}`, `of=${fifos.from[1]}`, 'bs=64k', 'status=none'], { stdio: 'ignore' }));
    const r = await run(process.execPath, [BIN, ...argv], { cwd: REPO, input: stdin, timeoutMs: 300_000 });
    if (r.code === 0) for (const p of procs) if ((await ended(p)) !== 0) throw new Error(`dd through a FIFO failed for ${argv[0]}`);
    return r;
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const p of made) await rm(p, { force: true });
  }
}

/** Packs one layer tar as the converter does; returns the blob's bytes and the builder's result. */
export async function converterPack(W: string, layerTar: string, o: ConverterPack = {}): Promise<{ blob: Buffer; result: RunResult }> {
  const drained = join(W, 'drained');
  const result = await throughFifos(packArgv(W, o), { into: [layerTar, join(W, 'blob.targz')], from: [join(W, 'blob.rafs'), drained] }, '');
  if (result.code !== 0) throw new Error(`pack exit ${result.code}: ${result.stderr.toString()}`);
  const blob = await readFile(drained);
  await rm(drained);
  return { blob, result };
}

/** An entry of the blob (image.boot, image.blob, blob.meta ...) found by name in its TOC, zstd-decoded when flagged so. */
export function tocEntry(blob: Buffer, name: string): Buffer | undefined {
  const header = blob.subarray(blob.length - 512);
  if (header.subarray(0, 13).toString('latin1') !== 'rafs.blob.toc') throw new Error('the blob does not end in a rafs.blob.toc header');
  const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/, ''), 8);
  const toc = blob.subarray(blob.length - 512 - size, blob.length - 512);
  for (let o = 0; o < toc.length; o += 128) {
    const raw = toc.subarray(o + 8, o + 24);
    if (raw.subarray(0, raw.indexOf(0) < 0 ? 16 : raw.indexOf(0)).toString('latin1') !== name) continue;
    const at = Number(toc.readBigUInt64LE(o + 56));
    const stored = blob.subarray(at, at + Number(toc.readBigUInt64LE(o + 64)));
    return (toc.readUInt32LE(o) & 0xf) === 2 ? Buffer.from(zstdDecompress(stored)) : Buffer.from(stored);
  }
  return undefined;
}

/** The converter's merge argv, stdin "/". */
export function converterMerge(W: string, sources: string[]): Promise<RunResult> {
  const argv = ['merge', '--log-level', 'warn', '--prefetch-policy', 'fs', '--output-json', join(W, 'merge-output.json'), '--bootstrap', join(W, 'bootstrap'), ...sources];
  return run(process.execPath, [BIN, ...argv], { cwd: REPO, input: '/', timeoutMs: 300_000 });
}

/** The converter's Unpack of one layer: W/image.boot and W/image.blob in, the tar out of the FIFO W/oci.tar into `out`. */
export async function converterUnpack(W: string, out: string): Promise<RunResult> {
  const argv = ['unpack', '--log-level', 'warn', '--bootstrap', join(W, 'image.boot'), '--output', join(W, 'oci.tar'), '--blob', join(W, 'image.blob')];
  return throughFifos(argv, { from: [join(W, 'oci.tar'), out] }, '');
}
