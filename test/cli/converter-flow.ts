// The nydus-snapshotter converter's side of the contract, shared by the converter tests: the
// layers they pack, a TOC and section reader written from tar-merge-export.md §9, the pack argv
// of its buildPackArgs driven through two FIFOs, and RAFS images compared as trees by our reader.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { decompress as zstdDecompress } from 'zstd-napi';
import { compareTrees } from '../helpers/compare.js';
import { buildLayerDir, tarLayer, umociUnpack, writeOciLayout, type LayerEntry } from '../helpers/oci.js';
import { run, runOk, type RunResult } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';
import { BlobReader } from '../../src/read/data.js';
import { openImage } from '../../src/read/open.js';
import { isDir, isReg, isSymlink, type ImageNode, type RafsImage } from '../../src/read/model.js';
import { imageEntries } from '../builder/read-back.js';
import { BIN, loggedBlobIds, nydusImageOk, REPO } from './cli-runner.js';

export const T0 = 1_600_000_000;
export const T1 = 1_650_000_000;
export const T2 = 1_700_000_000;
export const MiB = 1024 * 1024;

/** Lower → upper. Every layer keeps at least one file with data in the final tree. */
export const LAYERS: LayerEntry[][] = [
  [
    { kind: 'dir', path: '.', mtime: T0 },
    { kind: 'dir', path: 'bin', mtime: T0 },
    { kind: 'file', path: 'bin/tool', data: prng(1, 3 * MiB + 123), mode: 0o755, mtime: T0 },
    { kind: 'symlink', path: 'bin/sh', target: 'tool', mtime: T0 },
    { kind: 'file', path: 'changing', data: 'v0\n', mtime: T0 },
    { kind: 'dir', path: 'data', mtime: T0, xattrs: { 'user.layer': '0' } },
    { kind: 'file', path: 'data/a', data: 'a0\n', mtime: T0 },
    { kind: 'file', path: 'data/b', data: 'b0\n', mtime: T0 },
    { kind: 'dir', path: 'data/sub', mtime: T0 },
    { kind: 'file', path: 'data/sub/c', data: 'c0\n', mtime: T0 },
    { kind: 'dir', path: 'dev', mtime: T0 },
    { kind: 'char', path: 'dev/null', major: 1, minor: 3, mode: 0o666, mtime: T0 },
    { kind: 'fifo', path: 'dev/pipe', mode: 0o600, mtime: T0 },
    { kind: 'dir', path: 'etc', mtime: T0 },
    { kind: 'file', path: 'etc/hosts', data: '127.0.0.1 localhost\n', mtime: T0 },
    { kind: 'symlink', path: 'etc/localhost', target: 'hosts', mtime: T0 },
    { kind: 'file', path: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n', mtime: T0 },
    { kind: 'file', path: 'gone', data: 'gone0\n', mtime: T0 },
    { kind: 'dir', path: 'gonedir', mtime: T0 },
    { kind: 'file', path: 'gonedir/x', data: 'x0', mtime: T0 },
    { kind: 'dir', path: 'gonedir/y', mtime: T0 },
    { kind: 'file', path: 'gonedir/y/z', data: 'z0', mtime: T0 },
    { kind: 'dir', path: 'hard', mtime: T0 },
    { kind: 'file', path: 'hard/orig', data: 'shared by three names\n', uid: 7, gid: 8, mode: 0o640, mtime: T0, xattrs: { 'user.h': '1', 'trusted.h': 'th' } },
    { kind: 'hardlink', path: 'hard/link1', to: 'hard/orig' },
    { kind: 'hardlink', path: 'hard/link2', to: 'hard/orig' },
    { kind: 'file', path: 'owned', data: 'owned\n', uid: 1000, gid: 1000, mode: 0o600, mtime: T0 },
    { kind: 'file', path: 'suid', data: '#!/bin/sh\n', mode: 0o4755, mtime: T0 },
    { kind: 'dir', path: 'swap', mtime: T0 },
    { kind: 'dir', path: 'swap/deeper', mtime: T0 },
    { kind: 'file', path: 'swap/deeper/f', data: 'f0', mtime: T0 },
    { kind: 'file', path: 'swap/inner', data: 'inner0', mtime: T0 },
    { kind: 'dir', path: 'x', mtime: T0, xattrs: { 'user.dir': 'd0', 'trusted.dir': 'td0' } },
    { kind: 'file', path: 'x/plain', data: '', mtime: T0 },
    { kind: 'file', path: 'x/xf', data: 'xattr file\n', mtime: T0, xattrs: { 'user.foo': 'bar', 'trusted.t': 'tv' } },
  ],
  [
    { kind: 'dir', path: '.', mtime: T1 },
    { kind: 'file', path: '.wh.gone', data: '', mtime: T1 },
    { kind: 'file', path: '.wh.gonedir', data: '', mtime: T1 },
    { kind: 'dir', path: 'bin', mtime: T1 },
    { kind: 'file', path: 'bin/other', data: 'other binary\n', mode: 0o755, mtime: T1 },
    { kind: 'symlink', path: 'bin/sh', target: '/bin/other', mtime: T1 },
    { kind: 'file', path: 'changing', data: 'v1 changed\n', mode: 0o600, uid: 1, gid: 2, mtime: T1 },
    { kind: 'dir', path: 'data', mode: 0o750, mtime: T1, xattrs: { 'user.layer': '1' } },
    { kind: 'file', path: 'data/.wh..wh..opq', data: '', mtime: T1 },
    { kind: 'file', path: 'data/new', data: 'new1\n', mtime: T1 },
    { kind: 'dir', path: 'etc', mtime: T1 },
    { kind: 'file', path: 'etc/.wh.localhost', data: '', mtime: T1 },
    { kind: 'dir', path: 'hard', mtime: T1 },
    { kind: 'file', path: 'hard/link2', data: 'replaced\n', mtime: T1 },
    { kind: 'dir', path: 'l1', mtime: T1 },
    { kind: 'file', path: 'l1/pair-a', data: prng(2, 64 * 1024), mtime: T1 },
    { kind: 'hardlink', path: 'l1/pair-b', to: 'l1/pair-a' },
    { kind: 'file', path: 'swap', data: 'swap is a file now\n', mtime: T1 },
  ],
  [
    { kind: 'dir', path: '.', mode: 0o751, mtime: T2 },
    { kind: 'file', path: '.wh.nothing-here', data: '', mtime: T2 },
    { kind: 'file', path: 'changing', data: 'v2 final\n', mtime: T2 },
    { kind: 'dir', path: 'data', mtime: T2 },
    { kind: 'dir', path: 'data/sub', mtime: T2 },
    { kind: 'file', path: 'data/sub/d', data: 'd2\n', mtime: T2 },
    { kind: 'dir', path: 'etc', mtime: T2 },
    { kind: 'file', path: 'etc/.wh.hosts', data: '', mtime: T2 },
    { kind: 'dir', path: 'l1', mtime: T2 },
    { kind: 'file', path: 'l1/.wh.pair-a', data: '', mtime: T2 },
    { kind: 'dir', path: 'newdir', mtime: T2 },
    { kind: 'dir', path: 'newdir/deep', mtime: T2 },
    { kind: 'file', path: 'newdir/deep/file', data: prng(3, MiB + 1), mtime: T2 },
    { kind: 'dir', path: 'swap', mode: 0o700, mtime: T2 },
    { kind: 'file', path: 'swap/again', data: 'again2\n', mtime: T2 },
    { kind: 'dir', path: 'x', mtime: T2, xattrs: { 'user.dir': 'd2' } },
    { kind: 'file', path: 'x/xf', data: 'xattr file v2\n', mtime: T2, xattrs: { 'user.foo': 'baz', 'trusted.t': 'tv2' } },
  ],
];

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// ---- the converter's side of the contract: a TOC reader written from tar-merge-export.md §9 ----

export interface SectionHeader {
  name: string;
  size: number;
}

/** A blob section's 512-byte tar header (blob.md §2.1), or undefined when the bytes are not one. */
export function sectionHeader(b: Buffer): SectionHeader | undefined {
  if (b.length !== 512 || b[156] !== 0x30) return undefined;
  if (b.subarray(257, 265).toString('latin1') !== 'ustar  \0') return undefined;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  if (parseInt(b.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, ''), 8) !== sum) return undefined;
  const nul = b.indexOf(0);
  const name = b.subarray(0, nul >= 0 && nul < 100 ? nul : 100).toString('latin1');
  return { name, size: parseInt(b.subarray(124, 136).toString('latin1').replace(/\0.*$/, ''), 8) };
}

export interface TocItem {
  flags: number;
  name: string;
  offset: number;
  compressedSize: number;
  uncompressedSize: number;
}

/** The TOC of a blob-toc blob: the last 512 B name `rafs.blob.toc`, its data sits just before. */
export function readTocOf(blob: Buffer): TocItem[] {
  const h = sectionHeader(blob.subarray(blob.length - 512));
  if (!h || h.name !== 'rafs.blob.toc') throw new Error(`the last 512 B are not a rafs.blob.toc header: ${JSON.stringify(h)}`);
  if (h.size % 128 !== 0 || h.size > 1024 * 1024) throw new Error(`TOC size ${h.size}`);
  const data = blob.subarray(blob.length - 512 - h.size, blob.length - 512);
  const out: TocItem[] = [];
  for (let o = 0; o < data.length; o += 128) {
    const e = data.subarray(o, o + 128);
    const raw = e.subarray(8, 24);
    const nul = raw.indexOf(0);
    out.push({
      flags: e.readUInt32LE(0),
      name: raw.subarray(0, nul < 0 ? 16 : nul).toString('latin1'),
      offset: Number(e.readBigUInt64LE(56)),
      compressedSize: Number(e.readBigUInt64LE(64)),
      uncompressedSize: Number(e.readBigUInt64LE(72)),
    });
  }
  return out;
}

export function unzstd(b: Buffer): Buffer {
  return Buffer.from(zstdDecompress(b));
}

/** image.boot found by name in the TOC, its range read and zstd-decoded when flags & 0xf = 2. */
export function bootViaToc(blob: Buffer): Buffer {
  const e = readTocOf(blob).find((x) => x.name === 'image.boot');
  if (!e) throw new Error('no image.boot in the TOC');
  const stored = blob.subarray(e.offset, e.offset + e.compressedSize);
  const raw = (e.flags & 0xf) === 2 ? unzstd(stored) : Buffer.from(stored);
  if (raw.length !== e.uncompressedSize) throw new Error(`image.boot is ${raw.length} B, the TOC says ${e.uncompressedSize}`);
  return raw;
}

/** The converter's fallback: walk the headers backwards (each follows its unpadded data). */
export function sectionsByWalk(blob: Buffer): Array<{ name: string; start: number; size: number }> {
  const out: Array<{ name: string; start: number; size: number }> = [];
  let end = blob.length;
  while (end >= 512) {
    const h = sectionHeader(blob.subarray(end - 512, end));
    if (!h) break;
    const start = end - 512 - h.size;
    if (start < 0) break;
    out.push({ name: h.name, start, size: h.size });
    end = start;
  }
  return out;
}

export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
export const EROFS_MAGIC = 0xe0f5e1e2;

// ---- driving the CLI through FIFOs, as the Go converter does ----

export function kill(c: ChildProcess | undefined): void {
  if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export function exited(c: ChildProcess, what: string, ms = 60_000): Promise<number | null> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
    c.once('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

export type Stdin = 'empty' | 'closed';

export interface Packed {
  /** The blob as the reader drained it from W/blob.rafs. */
  blob: Buffer;
  result: RunResult;
  /** What W held after the call, besides the two FIFOs. */
  leftovers: string[];
}

/**
 * One layer through the converter's exact pack argv: W/blob.targz is a FIFO fed by a writer
 * process, W/blob.rafs a FIFO drained by a reader process into `drainTo`.
 */
export async function packViaFifos(
  W: string,
  layerTar: string,
  drainTo: string,
  stdin: Stdin,
  env: NodeJS.ProcessEnv = process.env,
  allowFailure = false,
  fsVersion: '5' | '6' = '6',
): Promise<Packed> {
  const input = join(W, 'blob.targz');
  const output = join(W, 'blob.rafs');
  await runOk('mkfifo', [input, output]);
  let writer: ChildProcess | undefined;
  let reader: ChildProcess | undefined;
  try {
    writer = spawn('dd', [`if=${layerTar}`, `of=${input}`, 'bs=64k', 'status=none'], { stdio: 'ignore' });
    reader = spawn('dd', [`if=${output}`, `of=${drainTo}`, 'bs=64k', 'status=none'], { stdio: 'ignore' });
    const argv = [
      'create', '--log-level', 'warn', '--prefetch-policy', 'fs', '--blob', output, '--whiteout-spec', 'none',
      '--fs-version', fsVersion, '--type', 'tar-rafs', '--blob-inline-meta',
      // buildPackArgs adds blob-toc for v6 only.
      ...(fsVersion === '6' ? ['--features', 'blob-toc'] : []), input,
    ];
    const result =
      stdin === 'empty'
        ? await run(process.execPath, [BIN, ...argv], { cwd: REPO, env, input: '', timeoutMs: 300_000 })
        : // fd 0 not open at all, as when a parent closed it.
          await run('sh', ['-c', 'exec "$0" "$@" <&-', process.execPath, BIN, ...argv], { cwd: REPO, env, timeoutMs: 300_000 });
    if (result.code !== 0 && !allowFailure) throw new Error(`create exit ${result.code}: ${result.stderr.toString()}`);
    if (result.code === 0) {
      expect(await exited(reader, 'the FIFO reader')).toBe(0);
      expect(await exited(writer, 'the FIFO writer')).toBe(0);
    }
    // Both FIFOs are used in place, never replaced by regular files.
    expect((await lstat(input)).isFIFO()).toBe(true);
    expect((await lstat(output)).isFIFO()).toBe(true);
    const leftovers = (await readdir(W)).filter((n) => n !== 'blob.targz' && n !== 'blob.rafs');
    return { blob: result.code === 0 ? await readFile(drainTo) : Buffer.alloc(0), result, leftovers };
  } finally {
    kill(writer);
    kill(reader);
    await rm(input, { force: true });
    await rm(output, { force: true });
  }
}

// ---- the fixture the converter tests start from ----

export interface ConverterFixture {
  work: string;
  /** The converter's work dir for merge: W/<hex> is the image.boot of the layer whose blob hashes to hex. */
  W: string;
  /** The blob store: BLOBS/<sha256 of the blob file>. */
  BLOBS: string;
  /** Layer dirs and tars, lower → upper. */
  layerDirs: string[];
  tars: string[];
  /** umoci's rootfs of the layers. */
  rootfs: string;
  hexes: string[];
  packs: Packed[];
}

/**
 * LAYERS as dirs and tars, umoci's rootfs of them, and each layer packed through the
 * converter's FIFOs (its own work dir per pack, as the converter makes), stored as BLOBS/<hex>
 * with its image.boot (taken out by `bootOf`) as W/<hex>. `timed` wraps the two long steps.
 */
export async function converterFixture(
  prefix: string, fsVersion: '5' | '6', bootOf: (blob: Buffer) => Buffer,
  timed: <T>(name: string, fn: () => Promise<T>) => Promise<T> = (_name, fn) => fn(),
): Promise<ConverterFixture> {
  const work = await mkdtemp(join(tmpdir(), prefix));
  const f: ConverterFixture = { work, W: join(work, 'W'), BLOBS: join(work, 'BLOBS'), layerDirs: [], tars: [], rootfs: '', hexes: [], packs: [] };
  await mkdir(f.W);
  await mkdir(f.BLOBS);
  const layerData: Buffer[] = [];
  for (const [i, entries] of LAYERS.entries()) {
    f.layerDirs.push(join(work, `layer${i}`));
    await buildLayerDir(f.layerDirs[i]!, entries);
    f.tars.push(join(work, `layer${i}.tar`));
    layerData.push(await tarLayer(f.layerDirs[i]!, f.tars[i]!));
  }
  await timed('umoci unpack', async () => {
    await writeOciLayout(join(work, 'oci'), 'v1', layerData.map((data) => ({ data })));
    f.rootfs = await umociUnpack(join(work, 'oci'), 'v1', join(work, 'bundle'));
  });
  await timed(`pack ${LAYERS.length} layers`, async () => {
    for (const [i, tar] of f.tars.entries()) {
      const pw = join(work, `pack${i}`);
      await mkdir(pw);
      const packed = await packViaFifos(pw, tar, join(work, `drained${i}`), 'empty', process.env, false, fsVersion);
      f.packs.push(packed);
      const hex = sha256(packed.blob);
      f.hexes.push(hex);
      await writeFile(join(f.BLOBS, hex), packed.blob);
      await writeFile(join(f.W, hex), bootOf(packed.blob));
    }
  });
  return f;
}

// ---- comparing two RAFS images as trees (our reader; kernel mounts do the same from outside) ----

export function describeNode(n: ImageNode, reader: BlobReader): Record<string, unknown> {
  const d: Record<string, unknown> = {
    mode: n.mode.toString(8),
    uid: n.uid,
    gid: n.gid,
    mtime: `${n.mtime}.${n.mtimeNsec}`,
    rdev: n.rdev,
    xattrs: n.xattrs.map((x) => `${x.name.toString('latin1')}=${x.value.toString('hex')}`).sort(),
  };
  if (!isDir(n.mode)) {
    d.size = n.size;
    d.nlink = n.nlink;
  }
  if (isSymlink(n.mode)) d.target = n.target?.toString('latin1');
  if (isReg(n.mode)) d.sha256 = sha256(Buffer.concat([...reader.readFile(n, true)]));
  return d;
}

/** Path → attributes and content digest, plus the hard-link groups as sorted path lists. */
export function imageTree(image: RafsImage, blobDir: string): { nodes: Record<string, unknown>; links: string[][] } {
  const reader = new BlobReader(image, { blobDir });
  try {
    const nodes: Record<string, unknown> = {};
    const byIno = new Map<number, string[]>();
    for (const [rel, n] of imageEntries(image.root)) {
      const p = `/${rel.toString('latin1')}`;
      nodes[p] = describeNode(n, reader);
      if (!isDir(n.mode)) byIno.set(n.ino, [...(byIno.get(n.ino) ?? []), p]);
    }
    const links = [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort();
    return { nodes, links };
  } finally {
    reader.close();
  }
}

/**
 * A tar `unpack` wrote, extracted by GNU tar as root into a new `dest`. unpack writes no root
 * entry: the directory takes `like`'s mode and owner (its mtime is not comparable).
 */
export async function extractLike(tarFile: string, dest: string, like: string): Promise<void> {
  await mkdir(dest);
  const ref = await stat(like);
  await chown(dest, ref.uid, ref.gid);
  await chmod(dest, ref.mode & 0o7777);
  await runOk('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-owner', '-p', '-C', dest, '-xf', tarFile]);
}

/** `unpack --blob-dir` of a merged bootstrap, extracted by GNU tar as root like `rootfs`: how it differs from rootfs. */
export async function unpackDiff(work: string, boot: string, blobDir: string, rootfs: string): Promise<string[]> {
  const outTar = join(work, 'OUT.tar');
  await runOk(process.execPath, [BIN, 'unpack', '--bootstrap', boot, '--blob-dir', blobDir, '--output', outTar], { cwd: REPO });
  const x = join(work, 'extracted');
  await extractLike(outTar, x, rootfs);
  return compareTrees(rootfs, x, { ignoreRootMtime: true });
}

/**
 * The layers chained instead of merged: each tar built with -t tar-rafs on the one before
 * (--parent-bootstrap, -B/-D in a fresh dir P), its blobs the parent's in the parent's order, then
 * its own (spec §3.4). The last bootstrap must read as the same tree as the merged one; returns
 * it and the builds' own blob ids.
 */
export async function chainLikeMerge(work: string, tars: string[], merged: string, mergedBlobs: string, args: string[] = []): Promise<{ boot: string; dir: string; own: string[] }> {
  const P = join(work, 'P');
  await mkdir(P);
  const own: string[] = [];
  for (const [i, tar] of tars.entries()) {
    const parent = i === 0 ? [] : ['--parent-bootstrap', join(P, `boot${i - 1}`)];
    const r = await nydusImageOk(['create', '-t', 'tar-rafs', ...args, '-B', join(P, `boot${i}`), '-D', P, ...parent, tar]);
    const ids = loggedBlobIds(r.stderr);
    expect(ids.slice(0, -1)).toEqual(own);
    own.push(ids[ids.length - 1]!);
  }
  const boot = join(P, `boot${tars.length - 1}`);
  const a = imageTree(openImage(merged), mergedBlobs);
  const b = imageTree(openImage(boot), P);
  expect(b.nodes).toEqual(a.nodes);
  expect(b.links).toEqual(a.links);
  expect(a.links).toEqual([['/hard/link1', '/hard/orig']]);
  return { boot, dir: P, own };
}
