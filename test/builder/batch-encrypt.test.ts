// `--batch-size` and `--encrypt` (issue 17, parts 2 and 3), judged from outside the writer: the
// stored units counted from the bootstrap, the blob grepped for known plaintext, every file read
// back by our reader and by `check`/`unpack` (GNU tar extracting the result), hostile blob.meta
// batch tables and cipher fields refused in one line, and the kernel mounting a batch image
// through --blob-cache-dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, link, mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, type CreateOptions } from '../../src/builder/create.js';
import { check } from '../../src/read/check.js';
import { openImage } from '../../src/read/open.js';
import { CHUNK_BATCH, type RafsImage } from '../../src/read/model.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import * as metaHeader from '../../src/format/blob/meta-header.js';
import { readBackAndCompare } from './read-back.js';
import { compareTrees } from '../helpers/compare.js';
import { kernelSupport, mountErofs, skipLoudly, withMountedImage, type SkipContext } from '../helpers/kernel.js';
import { prng } from '../helpers/tree.js';
import { runOk } from '../helpers/tools.js';
import { loggedBlobId, nydusImage, nydusImageOk } from '../cli/cli-runner.js';

const MiB = 1024 * 1024;
const KNOWN = 'THE-KNOWN-PLAINTEXT: nobody should find this sentence in an encrypted blob.\n';

let work = '';
let src = '';

/** Words from a seeded generator: text that compresses, unlike prng's bytes. */
function words(seed: number, size: number): Buffer {
  const vocab = ['alpha', 'beta', 'gamma', 'delta', 'kernel', 'layer', 'chunk', 'batch', 'image', 'blob', 'tree', 'node'];
  const r = prng(seed, size);
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const w = vocab[r[i % r.length]! % vocab.length]!;
    parts.push(w);
    n += w.length + 1;
  }
  return Buffer.from(parts.join(' ')).subarray(0, size);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-batch-enc-'));
  src = join(work, 'src');
  // 1500 small files in 30 directories (text and random, 1 B to 40 KiB), a file of 300 KiB (under
  // half the batch), one of 600 KiB (over half), one of 3 MiB + 5 (several chunks), an empty
  // file, duplicates, a hard link and a symlink.
  for (let d = 0; d < 30; d++) {
    await mkdir(join(src, `d${d}`), { recursive: true });
    for (let f = 0; f < 50; f++) {
      const seed = d * 100 + f;
      const size = 1 + ((seed * 7919) % 40_000);
      await writeFile(join(src, `d${d}`, `f${f}`), seed % 3 === 0 ? prng(seed, size) : words(seed, size));
    }
  }
  await writeFile(join(src, 'known.txt'), KNOWN.repeat(40));
  await writeFile(join(src, 'random-known'), prng(4242, 100_000));
  await writeFile(join(src, 'mid'), words(7, 300 * 1024));
  await writeFile(join(src, 'over-half'), words(8, 600 * 1024));
  await writeFile(join(src, 'big'), prng(9, 3 * MiB + 5));
  await writeFile(join(src, 'empty'), '');
  await writeFile(join(src, 'tiny'), 'x');
  await copyFile(join(src, 'd1', 'f1'), join(src, 'dup-of-d1-f1'));
  await link(join(src, 'd2', 'f2'), join(src, 'hard-d2-f2'));
  await symlink('d3/f3', join(src, 'sym'));
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface Built {
  boot: string;
  blob: string;
  image: RafsImage;
}

async function build(name: string, opts: Partial<CreateOptions>): Promise<Built> {
  const out = join(work, name);
  await mkdir(out, { recursive: true });
  const boot = join(out, 'boot');
  const blob = join(out, 'blob');
  await create({ source: src, bootstrap: boot, blob, ...opts });
  return { boot, blob, image: openImage(boot) };
}

/** Stored units of the image's own blob: a batch is one, whatever number of chunks it holds. */
function storedUnits(image: RafsImage): { units: number; chunks: number; batched: number; bytes: number } {
  const starts = new Set<number>();
  let batched = 0;
  let bytes = 0;
  for (const c of image.chunkTable) {
    if (starts.has(c.compressedOffset)) continue;
    starts.add(c.compressedOffset);
    bytes += c.compressedSize;
  }
  for (const c of image.chunkTable) if ((c.flags & CHUNK_BATCH) !== 0) batched++;
  return { units: starts.size, chunks: image.chunkTable.length, batched, bytes };
}

async function unpackAndCompare(b: Built, name: string): Promise<string[]> {
  const tar = join(work, `${name}.tar`);
  const dest = join(work, `${name}-x`);
  await nydusImageOk(['unpack', '--bootstrap', b.boot, '--blob', b.blob, '--output', tar]);
  await mkdir(dest);
  await runOk('tar', ['-xpf', tar, '-C', dest, '--numeric-owner']);
  // unpack never writes the root; directory mtimes change as tar fills them.
  return compareTrees(src, dest, { ignoreRootMtime: true, skip: ['mtime'] });
}

describe('--batch-size', () => {
  let plain: Built;
  let batched: Built;
  beforeAll(async () => {
    plain = await build('plain', {});
    batched = await build('batched', { batchSize: 0x100000 });
  }, 120_000);

  it('gives fewer, larger compressed units than one per chunk (counts printed)', async () => {
    const p = storedUnits(plain.image);
    const b = storedUnits(batched.image);
    const [pSize, bSize] = [(await readFile(plain.blob)).length, (await readFile(batched.blob)).length];
    process.stderr.write(
      `batch 0x100000 on ${p.chunks} chunks: stored units ${p.units} -> ${b.units} (${b.batched} chunks batched), ` +
        `mean stored unit ${Math.round(p.bytes / p.units)} -> ${Math.round(b.bytes / b.units)} B, blob ${pSize} -> ${bSize} B\n`,
    );
    expect(b.chunks).toBe(p.chunks);
    expect(p.units).toBe(p.chunks);
    expect(b.units * 10).toBeLessThan(p.units);
    expect(b.bytes / b.units).toBeGreaterThan((10 * p.bytes) / p.units);
    // Exactly the chunks of one-chunk files under half the batch are batched: not those of
    // over-half, nor any of big's (its 5-byte tail included: a file of several chunks).
    const unbatchable = batched.image.chunkTable.filter((c) => c.uncompressedSize >= 0x80000 || c.fileOffset > 0);
    expect(unbatchable.every((c) => (c.flags & CHUNK_BATCH) === 0)).toBe(true);
    expect(unbatchable.some((c) => c.uncompressedSize === 5)).toBe(true);
    expect(b.batched).toBe(b.chunks - unbatchable.length);
  });

  it('marks the blob batch + chunk-v2, and keeps batch contexts after the v2 chunk array in blob.meta', async () => {
    const blob = batched.image.blobs[0]!;
    expect(blob.features & (bt.FEATURE_BATCH | bt.FEATURE_CHUNK_INFO_V2)).toBe(bt.FEATURE_BATCH | bt.FEATURE_CHUNK_INFO_V2);
    const bytes = await readFile(batched.blob);
    const h = metaHeader.decode(bytes, blob.ciOffset + blob.ciCompressedSize);
    expect(h.s_features).toBe(blob.features);
    expect(h.s_ci_zran_offset).toBe(blob.chunkCount * 24);
    expect(h.s_ci_zran_count).toBeGreaterThan(0);
    expect(h.s_ci_zran_size).toBe(h.s_ci_zran_count * 40);
    expect(blob.ciUncompressedSize).toBe(blob.chunkCount * 24 + h.s_ci_zran_size);
    // One context per distinct batch start.
    const starts = new Set(batched.image.chunkTable.filter((c) => (c.flags & CHUNK_BATCH) !== 0).map((c) => c.compressedOffset));
    expect(h.s_ci_zran_count).toBe(starts.size);
  });

  it('reads back equal: our reader, check, and unpack extracted by GNU tar', async () => {
    for (const b of [plain, batched]) {
      const r = readBackAndCompare(b.image, { blob: b.blob }, src);
      expect(r.mismatches).toEqual([]);
      expect(r.files).toBeGreaterThan(1500);
    }
    const c = check(batched.boot, { blob: batched.blob });
    expect(c.verifiedChunks).toBe(batched.image.blobs[0]!.chunkCount);
    const r = await nydusImageOk(['check', '-B', batched.boot, '-b', batched.blob]);
    expect(r.stdout.toString() + r.stderr.toString()).toMatch(/features: aligned batch cap_toc chunk-v2/);
    expect(await unpackAndCompare(batched, 'batched-unpack')).toEqual([]);
  });

  it('reads back from the chunk data alone (the converter\'s image.blob), rebuilding batches from the bootstrap', async () => {
    const blob = batched.image.blobs[0]!;
    const dataOnly = join(work, 'batched-data-only');
    await copyFile(batched.blob, dataOnly);
    await truncate(dataOnly, blob.ciOffset);
    const r = readBackAndCompare(batched.image, { blob: dataOnly }, src);
    expect(r.mismatches).toEqual([]);
  });

  it('hostile blob.meta batch entries and contexts are refused in one line each', async () => {
    // compressor none keeps the chunk table raw in the blob, so its bytes can be edited in place.
    const raw = await build('batched-raw', { batchSize: 0x10000, compressor: 'none' });
    const blob = raw.image.blobs[0]!;
    expect(blob.ciCompressor).toBe('none');
    const good = await readFile(raw.blob);
    const n = blob.chunkCount;
    const firstBatched = raw.image.chunkTable.find((c) => (c.flags & CHUNK_BATCH) !== 0)!;
    const entry = blob.ciOffset + firstBatched.index * 24;
    const ctx0 = blob.ciOffset + n * 24;
    const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
      ['batch index past the contexts', (b) => b.writeUInt32LE(0xffff, entry + 20), /names batch 65535, there are \d+/],
      ['offset past its batch', (b) => b.writeUInt32LE(0xfffff0, entry + 16), /lie outside its batch/],
      ['a context claiming 32 MiB', (b) => b.writeUInt32LE(0x2000000, ctx0 + 4), /claims 33554432 raw bytes/],
      ['a context with no stored bytes', (b) => b.writeUInt32LE(0, ctx0), /has no stored bytes|claims 0 stored/],
      ['a context past the blob end', (b) => b.writeUInt32LE(0xfffffff, ctx0), /blob is shorter than referenced/],
    ];
    for (const [what, edit, want] of cases) {
      const bad = Buffer.from(good);
      edit(bad);
      const file = join(work, 'hostile-blob');
      await writeFile(file, bad);
      const r = await nydusImage(['check', '-B', raw.boot, '-b', file]);
      const err = r.stderr.toString().trim();
      expect(r.code, what).toBe(1);
      expect(err.split('\n'), what).toHaveLength(1);
      expect(err, what).toMatch(want);
    }
  });
});

describe('--encrypt', () => {
  let plain: Built;
  let enc: Built;
  let encBatch: Built;
  /** On the worker pool: the tree is small enough that a build without threads runs on the main thread. */
  let encPool: Built;
  beforeAll(async () => {
    plain = await build('enc-plain', {});
    enc = await build('enc', { encrypt: true });
    encBatch = await build('enc-batch', { encrypt: true, batchSize: 0x100000 });
    encPool = await build('enc-pool', { encrypt: true, batchSize: 0x100000, threads: 2 });
  }, 120_000);

  it('leaves no plaintext of a known file in the blob (a plain build does show it)', async () => {
    const randomSlice = (await readFile(join(src, 'random-known'))).subarray(5000, 5064);
    const known = Buffer.from(KNOWN.trim());
    const p = await readFile(plain.blob);
    expect(p.indexOf(randomSlice)).toBeGreaterThanOrEqual(0);
    for (const b of [enc, encBatch]) {
      const bytes = await readFile(b.blob);
      expect(bytes.indexOf(randomSlice)).toBe(-1);
      expect(bytes.indexOf(known)).toBe(-1);
      // blob.meta's header magic is encrypted too.
      const blob = b.image.blobs[0]!;
      expect(bytes.readUInt32LE(blob.ciOffset + blob.ciCompressedSize)).not.toBe(metaHeader.MAGIC);
    }
  });

  it('keeps a per-blob AES-128-XTS key and IV in the blob table, and flags the superblock', async () => {
    const keys = new Set<string>();
    for (const b of [enc, encBatch]) {
      const blob = b.image.blobs[0]!;
      expect(blob.cipherAlgo).toBe(1);
      expect(blob.features & bt.FEATURE_ENCRYPTED).toBe(bt.FEATURE_ENCRYPTED);
      expect(blob.features & bt.FEATURE_CHUNK_INFO_V2).toBe(bt.FEATURE_CHUNK_INFO_V2);
      expect(b.image.flags & ext.FLAG_ENCRYPTION_AES128XTS).toBe(ext.FLAG_ENCRYPTION_AES128XTS);
      expect(b.image.flags & ext.FLAG_ENCRYPTION_NONE).toBe(0);
      keys.add(blob.metaDigest.toString('hex') + blob.cipherIv!.toString('hex'));
    }
    expect(keys.size).toBe(2);
    expect(plain.image.flags & ext.FLAG_ENCRYPTION_NONE).toBe(ext.FLAG_ENCRYPTION_NONE);
  });

  it('check and unpack read it back equal', async () => {
    for (const [b, name] of [[enc, 'enc-unpack'], [encBatch, 'enc-batch-unpack'], [encPool, 'enc-pool-unpack']] as const) {
      expect(readBackAndCompare(b.image, { blob: b.blob }, src).mismatches).toEqual([]);
      const r = await nydusImageOk(['check', '-B', b.boot, '-b', b.blob]);
      expect(r.stdout.toString() + r.stderr.toString()).toMatch(/chunk-v2 encrypted/);
      expect(await unpackAndCompare(b, name)).toEqual([]);
    }
  });

  it('a wrong key, an unsupported cipher or an XTS-invalid key in the bootstrap: one line each', async () => {
    const boot = await readFile(enc.boot);
    const es = ext.decode(boot);
    const entry = es.blob_table_offset;
    const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
      ['a wrong key', (b) => (b[entry + 168] ^= 0xff), /does not decompress|digest mismatch|does not decrypt|wrong key/],
      ['aes256gcm', (b) => b.writeUInt32LE(3, entry + 216), /cipher_algo: aes256gcm is not supported/],
      ['cipher 7', (b) => b.writeUInt32LE(7, entry + 216), /cipher_algo/],
      ['equal key halves', (b) => b.copy(b, entry + 168 + 16, entry + 168, entry + 168 + 16), /two equal halves/],
    ];
    for (const [what, edit, want] of cases) {
      const bad = Buffer.from(boot);
      edit(bad);
      const file = join(work, 'hostile-boot');
      await writeFile(file, bad);
      const r = await nydusImage(['check', '-B', file, '-b', enc.blob]);
      const err = r.stderr.toString().trim();
      expect(r.code, what).toBe(1);
      expect(err.split('\n'), `${what}: ${err}`).toHaveLength(1);
      expect(err, what).toMatch(want);
    }
  });
});

function needKernel(ctx: SkipContext): void {
  const k = kernelSupport();
  if (!k.ok) skipLoudly(ctx, k.why!);
}

describe('export --block of batch and encrypted images, mounted by the kernel', () => {
  it('writes plain data (batches decoded, chunks decrypted with the bootstrap\'s key) that shows the source tree', async (ctx) => {
    needKernel(ctx);
    const b = await build('export-batch-enc', { encrypt: true, batchSize: 0x10000 });
    const dir = join(work, 'export-dir');
    await mkdir(dir);
    await copyFile(b.blob, join(dir, b.image.blobs[0]!.blobId));
    const disk = join(work, 'export.disk');
    await nydusImageOk(['export', '--block', '-B', b.boot, '-D', dir, '-O', disk]);
    const m = await mountErofs(disk, { loop: true });
    try {
      expect(await compareTrees(src, m.dir, { ignoreRootMtime: true })).toEqual([]);
    } finally {
      await m.unmount();
    }
  });
});

describe('--batch-size with --blob-cache-dir, mounted by the kernel', () => {
  it('shows the source tree through the .blob.data device; .blob.meta holds the batch contexts', async (ctx) => {
    needKernel(ctx);
    const out = join(work, 'cache-batch');
    const dir = join(out, 'cache');
    await mkdir(dir, { recursive: true });
    const boot = join(out, 'boot');
    const r = await nydusImageOk(['create', '-B', boot, '--blob-cache-dir', dir, '--batch-size', '0x100000', src]);
    const id = loggedBlobId(r.stderr);
    const meta = await readFile(join(dir, `${id}.blob.meta`));
    const h = metaHeader.decode(meta, meta.length - metaHeader.SIZE);
    expect(h.s_features & bt.FEATURE_BATCH).toBe(bt.FEATURE_BATCH);
    expect(h.s_ci_zran_count).toBeGreaterThan(0);
    const image = openImage(boot);
    expect(image.chunkTable.some((c) => (c.flags & CHUNK_BATCH) !== 0)).toBe(true);
    const diffs = await withMountedImage(boot, [join(dir, `${id}.blob.data`)], (mnt) => compareTrees(src, mnt, { ignoreRootMtime: true }));
    expect(diffs).toEqual([]);
  });
});
