// `export --block` judged by the kernel and veritysetup: images built from the hostile tree (zstd,
// lz4_block, none) exported to one raw disk must mount alone (-o ro,loop) and show exactly the
// source; the upstream v6 fixture exports and reads back; a hand-built tarfs image with two tar
// blobs (512-byte blocks) exports with the tars copied as is; the verity tree is veritysetup's.
// Bad inputs fail in one line naming the blob, leaving no file behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import { exportBlock, planDisk } from '../../src/builder/export.js';
import { loadBootstrap, openImage } from '../../src/read/open.js';
import { BlobReader } from '../../src/read/data.js';
import type { ChunkInfo, ImageNode } from '../../src/read/model.js';
import type { CompressorName } from '../../src/algo/index.js';
import { planBootstrap } from '../../src/bootstrap/plan.js';
import { emitBootstrap } from '../../src/bootstrap/emit.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import * as sbc from '../../src/format/erofs/superblock.js';
import type { TreeNode } from '../../src/tree/node.js';
import { NydusError } from '../../src/errors.js';
import { compareTrees } from '../helpers/compare.js';
import { kernelSupport, mountErofs, skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { hasTool, run, runOk } from '../helpers/tools.js';
import { buildHostileTree, prng } from '../helpers/tree.js';
import { UPSTREAM } from '../cli/cli-runner.js';

const kernel = kernelSupport();
const isRoot = process.getuid?.() === 0;
let work = '';
let src = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-export-'));
  if (!isRoot) return;
  src = join(work, 'src');
  await buildHostileTree(src);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function needKernel(ctx: SkipContext): void {
  if (!kernel.ok) skipLoudly(ctx, `kernel cannot mount EROFS here: ${kernel.why}`);
}
function needRoot(ctx: SkipContext): void {
  if (!isRoot) skipLoudly(ctx, 'the hostile tree needs root');
}
function needVeritysetup(ctx: SkipContext): void {
  if (!hasTool('veritysetup')) skipLoudly(ctx, 'veritysetup is not on PATH');
}

interface Built {
  boot: string;
  dir: string;
  blobId: string;
}
const built = new Map<string, Promise<Built>>();
/** One native build of the hostile tree per compressor: DIR/boot and DIR/<blob id>. */
function buildNative(compressor: CompressorName): Promise<Built> {
  let p = built.get(compressor);
  if (!p) {
    p = (async () => {
      const dir = join(work, `native-${compressor}`);
      await mkdir(dir);
      const boot = join(dir, 'boot');
      const r = await create({ source: src, bootstrap: boot, blob: undefined, blobDir: dir, compressor });
      return { boot, dir, blobId: r.blobs[0]! };
    })();
    built.set(compressor, p);
  }
  return p;
}

async function withMount<T>(disk: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const m = await mountErofs(disk, { loop: true });
  try {
    return await fn(m.dir);
  } finally {
    await m.unmount();
  }
}

const verityArgs = (B: number, N: number, hashOffset: number) => [
  '--no-superblock', '--format=1', '-s', '', '--hash=sha256', `--data-block-size=${B}`, '--hash-block-size=4096',
  '--data-blocks', String(N), '--hash-offset', String(hashOffset),
];

/** veritysetup's own root for the first N·B bytes of `disk` (format on a copy of the data range). */
async function veritysetupRoot(disk: string, B: number, N: number): Promise<{ root: string; hash: Buffer }> {
  const copy = `${disk}.data`;
  const hashFile = `${disk}.hash`;
  const fh = await open(disk, 'r');
  try {
    const out = await open(copy, 'w');
    try {
      const piece = Buffer.alloc(1 << 20);
      for (let off = 0; off < N * B; ) {
        const { bytesRead } = await fh.read(piece, 0, Math.min(piece.length, N * B - off), off);
        await out.write(piece.subarray(0, bytesRead));
        off += bytesRead;
      }
    } finally {
      await out.close();
    }
  } finally {
    await fh.close();
  }
  const r = await runOk('veritysetup', ['format', ...verityArgs(B, N, 0).slice(0, -2), copy, hashFile]);
  const m = /^Root hash:\s+([0-9a-f]{64})$/m.exec(r.stdout.toString());
  if (!m) throw new Error(`no root hash in:\n${r.stdout.toString()}`);
  const hash = await readFile(hashFile).catch(() => Buffer.alloc(0));
  await rm(copy);
  await rm(hashFile, { force: true });
  return { root: m[1]!, hash };
}

function findNode(root: ImageNode, rel: string): ImageNode {
  let n = root;
  for (const part of rel.split('/')) n = n.children!.find((c) => c.name.toString() === part)!;
  return n;
}

async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

describe('export --block of native images: the kernel mounts the disk alone', () => {
  for (const compressor of ['zstd', 'lz4_block', 'none'] as const) {
    it(`${compressor}: mount -o ro,loop DISK shows exactly the hostile tree`, async (ctx) => {
      needRoot(ctx);
      needKernel(ctx);
      const b = await buildNative(compressor);
      const disk = join(work, `${compressor}.disk`);
      const r = await exportBlock({ bootstrap: b.boot, blobDir: b.dir, output: disk });
      expect(r).toMatchObject({ output: disk, blockSize: 4096 });
      expect(r.verity).toBeUndefined();

      // Layout: the bootstrap, zeros, the blob's image at mapped_blkaddr; nothing after it.
      const bootBytes = await readFile(b.boot);
      const plan = planDisk(bootBytes, loadBootstrap(bootBytes), b.dir);
      expect(plan.blobs).toHaveLength(1);
      const blob = plan.blobs[0]!;
      expect(blob.mappedBlkaddr * 4096).toBe(Math.ceil(bootBytes.length / (512 * 1024)) * 512 * 1024);
      expect(r.dataBlocks).toBe(blob.mappedBlkaddr + blob.blocks);
      expect((await stat(disk)).size).toBe(r.dataBlocks * 4096);
      const head = Buffer.alloc(blob.mappedBlkaddr * 4096);
      const fh = await open(disk, 'r');
      await fh.read(head, 0, head.length, 0);
      await fh.close();
      expect(head.subarray(0, bootBytes.length).equals(bootBytes)).toBe(true);
      expect(head.subarray(bootBytes.length).every((x) => x === 0)).toBe(true);

      const diffs = await withMount(disk, (mnt) => compareTrees(src, mnt, { ignoreRootMtime: true }));
      expect(diffs).toEqual([]);
    });
  }

  it('default output is <localfs-dir>/<bootstrap file name>.disk, and only that file is added', async (ctx) => {
    needRoot(ctx);
    const b = await buildNative('none');
    const before = await filesIn(b.dir);
    const r = await exportBlock({ bootstrap: b.boot, blobDir: b.dir });
    expect(r.output).toBe(join(b.dir, 'boot.disk'));
    expect(await filesIn(b.dir)).toEqual([...before, 'boot.disk'].sort());
    await rm(r.output);
  });
});

describe('export --block --verity', () => {
  it('zstd image: veritysetup verify accepts the disk, the root is veritysetup\'s, one flipped data byte fails', async (ctx) => {
    needRoot(ctx);
    needVeritysetup(ctx);
    const b = await buildNative('zstd');
    const disk = join(work, 'verity.disk');
    const r = await exportBlock({ bootstrap: b.boot, blobDir: b.dir, output: disk, verity: true });
    const N = r.dataBlocks;
    expect(r.blockSize).toBe(4096);
    expect(r.verity!.hashOffset).toBe(N * 4096);
    expect(r.verity!.root).toMatch(/^[0-9a-f]{64}$/);

    const theirs = await veritysetupRoot(disk, 4096, N);
    expect(r.verity!.root).toBe(theirs.root);
    const whole = await readFile(disk);
    expect(whole.subarray(r.verity!.hashOffset).equals(theirs.hash)).toBe(true);
    const verify = ['verify', ...verityArgs(4096, N, r.verity!.hashOffset), disk, disk, r.verity!.root];
    await runOk('veritysetup', verify);

    // The same image exported without --verity is the data range, byte for byte.
    const plain = join(work, 'plain.disk');
    await exportBlock({ bootstrap: b.boot, blobDir: b.dir, output: plain });
    expect((await readFile(plain)).equals(whole.subarray(0, N * 4096))).toBe(true);
    await rm(plain);

    // Flip one byte of files/exact-4096 where the disk holds it.
    const bootBytes = await readFile(b.boot);
    const image = loadBootstrap(bootBytes);
    const plan = planDisk(bootBytes, image, b.dir);
    const chunk = findNode(image.root, 'files/exact-4096').chunks![0]!;
    const at = plan.blobs[0]!.mappedBlkaddr * 4096 + chunk.uncompressedOffset + 100;
    expect(whole.subarray(at - 100, at - 100 + 4096).equals(prng(1, 4096))).toBe(true);
    const fh = await open(disk, 'r+');
    await fh.write(Buffer.from([whole[at]! ^ 0x40]), 0, 1, at);
    await fh.close();
    const bad = await run('veritysetup', verify);
    expect(bad.code).not.toBe(0);
  });
});

describe('export --block of the upstream v6 fixture (mapped_blkaddr 512: a 2 MiB-aligned blob)', () => {
  const boot = join(UPSTREAM, 'bootstrap', 'rafs-v6-2.2.boot');
  const blobs = join(UPSTREAM, 'blobs');

  it('writes 521 blocks; both files read back as our reader gives them; verity matches veritysetup', async (ctx) => {
    const disk = join(work, 'fixture.disk');
    const r = await exportBlock({ bootstrap: boot, blobDir: blobs, output: disk, verity: true });
    expect(r).toMatchObject({ dataBlocks: 521, blockSize: 4096, verity: { hashOffset: 521 * 4096 } });
    const bytes = await readFile(disk);
    // 521 digests: 5 level-1 hash blocks under 1 level-2 block.
    expect(bytes.length).toBe((521 + 5 + 1) * 4096);
    expect(bytes.subarray(20480, 512 * 4096).every((x) => x === 0)).toBe(true);

    const image = openImage(boot);
    const reader = new BlobReader(image, { blobDir: blobs });
    const expected = new Map(image.root.children!.map((n) => [n.name.toString(), Buffer.concat([...reader.readFile(n, true)])]));
    reader.close();
    for (const [name, data] of expected) {
      const c = findNode(image.root, name).chunks![0]!;
      expect(bytes.subarray(512 * 4096 + c.uncompressedOffset, 512 * 4096 + c.uncompressedOffset + data.length).equals(data)).toBe(true);
    }
    if (hasTool('veritysetup')) {
      expect((await veritysetupRoot(disk, 4096, 521)).root).toBe(r.verity!.root);
      await runOk('veritysetup', ['verify', ...verityArgs(4096, 521, r.verity!.hashOffset), disk, disk, r.verity!.root]);
    }
    needKernel(ctx);
    await withMount(disk, async (mnt) => {
      expect(await filesIn(mnt)).toEqual([...expected.keys()].sort());
      for (const [name, data] of expected) expect((await readFile(join(mnt, name))).equals(data)).toBe(true);
    });
  });
});

// ---- tarfs: not built by `create` yet, so the bootstrap is assembled here from our planner and
// emitter, the way tar-merge-export.md §6 describes it: 512-byte blocks, the TARFS flag, chunk
// addresses = offset of the file data inside the tar / 512, each tar a blob named by its id.

interface TarMember {
  name: string;
  data: Buffer;
  /** Offset of the data in the tar. */
  at: number;
}

/** Members of a ustar archive (regular files only) and where their data sits. */
function tarMembers(tar: Buffer): TarMember[] {
  const out: TarMember[] = [];
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    if (type === '0' || type === '\0') out.push({ name, data: tar.subarray(off + 512, off + 512 + size), at: off + 512 });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const TARFS_CHUNK = 0x100000;

function node(name: string, mode: number, size = 0): TreeNode {
  return { name: Buffer.from(name), path: Buffer.from(`/${name}`), mode, uid: 0, gid: 0, mtime: 1_700_000_000, mtimeNsec: 0, size, rdev: 0, xattrs: [], links: 1 };
}

/** A tarfs bootstrap over `tars` (one blob each): every member at /<blob index>/<name>. */
function tarfsBootstrap(tars: Buffer[]): { boot: Buffer; ids: string[] } {
  const root = node('', 0o40755);
  root.path = Buffer.from('/');
  root.children = [];
  const chunks: ChunkInfo[] = [];
  const ids = tars.map((t) => createHash('sha256').update(t).digest('hex'));
  tars.forEach((tar, bi) => {
    const dir = node(String(bi), 0o40755);
    dir.children = [];
    root.children!.push(dir);
    let index = 0;
    for (const m of tarMembers(tar)) {
      const f = node(m.name, 0o100644, m.data.length);
      f.chunks = [];
      for (let k = 0; k * TARFS_CHUNK < m.data.length; k++) {
        const size = Math.min(TARFS_CHUNK, m.data.length - k * TARFS_CHUNK);
        const off = m.at + k * TARFS_CHUNK;
        f.chunks.push({ chunk: chunks.length, fileOffset: k * TARFS_CHUNK });
        chunks.push({
          blobIndex: bi, index: index++, digest: createHash('sha256').update(m.data.subarray(k * TARFS_CHUNK, k * TARFS_CHUNK + size)).digest(),
          flags: 0, compressedOffset: off, compressedSize: size, uncompressedOffset: off, uncompressedSize: size,
          fileOffset: k * TARFS_CHUNK, crc32: 0,
        });
      }
      dir.children.push(f);
    }
    dir.children.sort((a, b) => Buffer.compare(a.name, b.name));
  });
  const plan = planBootstrap(root, 512);
  const boot = emitBootstrap({
    plan, chunks, chunkSize: TARFS_CHUNK, blockSize: 512, explicitUidGid: true, prefetch: [],
    flags: ext.FLAG_TARFS_MODE | ext.FLAG_COMPRESSION_NONE | ext.FLAG_HASH_SHA256 | ext.FLAG_EXPLICIT_UID_GID | ext.FLAG_ENCRYPTION_NONE,
    blobs: tars.map((t, i) => ({
      blob_id: ids[i]!, blob_index: i, chunk_size: TARFS_CHUNK, chunk_count: chunks.filter((c) => c.blobIndex === i).length,
      compression_algo: 0, digest_algo: 1, features: bt.FEATURE_TARFS | bt.FEATURE_CAP_TAR_TOC,
      compressed_size: t.length, uncompressed_size: t.length, blob_toc_size: 0, ci_compressor: 0, ci_offset: 0,
      ci_compressed_size: 0, ci_uncompressed_size: 0, blob_toc_digest: Buffer.alloc(32), blob_meta_digest: Buffer.alloc(32),
      blob_meta_size: 0, cipher_iv: Buffer.alloc(8), cipher_algo: 0,
    })),
  });
  return { boot, ids };
}

/** A GNU tar (ustar format) of files made in code. */
async function makeTar(name: string, files: Array<[string, Buffer]>): Promise<Buffer> {
  const dir = join(work, `${name}-src`);
  await mkdir(dir);
  for (const [n, d] of files) await writeFile(join(dir, n), d);
  const tar = join(work, `${name}.tar`);
  await runOk('tar', ['--format=ustar', '-C', dir, '-cf', tar, ...files.map(([n]) => n)]);
  return readFile(tar);
}

describe('export --block of a tarfs image (512-byte blocks, tars copied as is)', () => {
  it('two tar blobs: the disk mounts alone with every file; verity with 512-byte data blocks is veritysetup\'s', async (ctx) => {
    const tars = [
      await makeTar('t0', [['small.txt', Buffer.from('hello tarfs\n')], ['odd.bin', prng(21, 70_001)], ['big.bin', prng(22, 2 * TARFS_CHUNK + 12_345)]]),
      await makeTar('t1', [['x', prng(23, 513)], ['empty', Buffer.alloc(0)]]),
    ];
    const dir = join(work, 'tarfs');
    await mkdir(dir);
    const { boot, ids } = tarfsBootstrap(tars);
    const bootFile = join(dir, 'tarfs.boot');
    await writeFile(bootFile, boot);
    for (const [i, t] of tars.entries()) await writeFile(join(dir, ids[i]!), t);

    const image = loadBootstrap(boot);
    expect(image.blockSize).toBe(512);
    const plan = planDisk(boot, image, dir);
    expect(plan.blockSize).toBe(512);
    const disk = join(work, 'tarfs.disk');
    const r = await exportBlock({ bootstrap: bootFile, blobDir: dir, output: disk, verity: true });
    expect(r.blockSize).toBe(512);
    const last = plan.blobs[1]!;
    expect(r.dataBlocks).toBe(last.mappedBlkaddr + tars[1]!.length / 512);
    expect(r.verity!.hashOffset).toBe(Math.ceil((r.dataBlocks * 512) / 4096) * 4096);

    // Each tar sits byte for byte at its slot's mapped_blkaddr × 512; zeros between.
    const bytes = await readFile(disk);
    let end = boot.length;
    expect(bytes.subarray(0, end).equals(boot)).toBe(true);
    for (const [i, b] of plan.blobs.entries()) {
      expect(b.mappedBlkaddr * 512 % (512 * 1024)).toBe(0);
      expect(bytes.subarray(end, b.mappedBlkaddr * 512).every((x) => x === 0)).toBe(true);
      expect(bytes.subarray(b.mappedBlkaddr * 512, b.mappedBlkaddr * 512 + tars[i]!.length).equals(tars[i]!)).toBe(true);
      end = b.mappedBlkaddr * 512 + tars[i]!.length;
    }
    expect(end).toBe(r.dataBlocks * 512);

    if (hasTool('veritysetup')) {
      const theirs = await veritysetupRoot(disk, 512, r.dataBlocks);
      expect(r.verity!.root).toBe(theirs.root);
      expect(bytes.subarray(r.verity!.hashOffset).equals(theirs.hash)).toBe(true);
      await runOk('veritysetup', ['verify', ...verityArgs(512, r.dataBlocks, r.verity!.hashOffset), disk, disk, r.verity!.root]);
    }

    needKernel(ctx);
    await withMount(disk, async (mnt) => {
      for (const [i, t] of tars.entries()) {
        const members = tarMembers(t);
        expect(await filesIn(join(mnt, String(i)))).toEqual(members.map((m) => m.name).sort());
        for (const m of members) expect((await readFile(join(mnt, String(i), m.name))).equals(m.data)).toBe(true);
      }
    });
  });
});

describe('export --block refuses bad input in one line, leaving no file', () => {
  const boot = join(UPSTREAM, 'bootstrap', 'rafs-v6-2.2.boot');
  const blobId = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';

  async function expectFailure(opts: Parameters<typeof exportBlock>[0], pattern: RegExp): Promise<NydusError> {
    const outDir = join(work, `bad-${Math.random().toString(16).slice(2)}`);
    await mkdir(outDir);
    const err = await exportBlock({ ...opts, output: join(outDir, 'disk') }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(NydusError);
    const e = err as NydusError;
    expect(e.message).toMatch(pattern);
    expect(e.message).not.toContain('\n');
    expect(await readdir(outDir)).toEqual([]);
    return e;
  }

  it('a missing blob names the blob file', async () => {
    const empty = join(work, 'no-blobs');
    await mkdir(empty);
    const e = await expectFailure({ bootstrap: boot, blobDir: empty }, new RegExp(`${join(empty, blobId)}: no such file`));
    expect(e.exit).not.toBe(0);
    expect(await readdir(empty)).toEqual([]);
  });

  it('a blob shorter than its chunks need names the blob file', async () => {
    const dir = join(work, 'short-blob');
    await mkdir(dir);
    await copyFile(join(UPSTREAM, 'blobs', blobId), join(dir, blobId));
    await truncate(join(dir, blobId), 5000);
    await expectFailure({ bootstrap: boot, blobDir: dir }, new RegExp(`${join(dir, blobId)}: blob is shorter than the bootstrap needs`));
  });

  it('a corrupt chunk found half-way removes the temporary file', async () => {
    const dir = join(work, 'corrupt-blob');
    await mkdir(dir);
    const blob = await readFile(join(UPSTREAM, 'blobs', blobId));
    const image = openImage(boot);
    const second = image.chunkTable.reduce((a, c) => (c.uncompressedOffset > a.uncompressedOffset ? c : a));
    blob.fill(0x55, second.compressedOffset, second.compressedOffset + 64);
    await writeFile(join(dir, blobId), blob);
    await expectFailure({ bootstrap: boot, blobDir: dir }, new RegExp(`${join(dir, blobId)}: chunk ${second.index} .*does not decompress`));
  });

  it('a tarfs tar shorter than its blob entry names the tar', async () => {
    const tar = await makeTar('short', [['a', prng(31, 5000)]]);
    const dir = join(work, 'short-tar');
    await mkdir(dir);
    const { boot: b, ids } = tarfsBootstrap([tar]);
    await writeFile(join(dir, 'boot'), b);
    await writeFile(join(dir, ids[0]!), tar.subarray(0, tar.length - 1024));
    await expectFailure({ bootstrap: join(dir, 'boot'), blobDir: dir }, new RegExp(`${ids[0]}: blob is shorter than the bootstrap needs: ${tar.length} bytes`));
  });

  it('mapped_blkaddr 0 (nydus-image 2.2.x bootstraps) is refused', async () => {
    const bytes = await readFile(boot);
    bytes.writeUInt32LE(0, sbc.DEVT_SLOTOFF * 128 + 68);
    const f = join(work, 'unmapped.boot');
    await writeFile(f, bytes);
    await expectFailure({ bootstrap: f, blobDir: join(UPSTREAM, 'blobs') }, /unmapped\.boot: device_slot\[0\]\.mapped_blkaddr = 0/);
  });

  it('a blob overlapping the bootstrap is refused', async () => {
    const bytes = await readFile(boot);
    bytes.writeUInt32LE(3, sbc.DEVT_SLOTOFF * 128 + 68);
    const f = join(work, 'overlap.boot');
    await writeFile(f, bytes);
    await expectFailure({ bootstrap: f, blobDir: join(UPSTREAM, 'blobs') }, /mapped_blkaddr = 3: overlaps the bootstrap, which ends at block 5/);
  });

  it('RAFS v5 bootstraps are refused', async () => {
    const v5 = join(UPSTREAM, 'repeatable', 'sha256-nocompress-repeatable');
    await expectFailure({ bootstrap: v5, blobDir: join(UPSTREAM, 'repeatable', 'blobs') }, /not a RAFS v6 bootstrap/);
  });

  it('the output may not replace an input', async () => {
    const dir = join(work, 'self');
    await mkdir(dir);
    await copyFile(join(UPSTREAM, 'blobs', blobId), join(dir, blobId));
    for (const output of [boot, join(dir, blobId)]) {
      const err = await exportBlock({ bootstrap: boot, blobDir: dir, output }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/would replace an input/);
    }
    expect((await readFile(join(dir, blobId))).equals(await readFile(join(UPSTREAM, 'blobs', blobId)))).toBe(true);
    expect(await readdir(dir)).toEqual([blobId]);
  });
});
