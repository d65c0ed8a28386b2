// `create -t targz-ref` (blob.md §4.3, oci-and-converters.md §1.8, §2.3(c)): the upstream zran
// fixtures build with the converter's exact argv (also through two FIFOs and stdin) and read
// back equal to `tar -xzf`; upstream's own blob.meta with a ZRAN table parses to the counts
// upstream's tests assert, and our index of upstream's test inputs has the shape those tests
// assert; reading the last file of a ~200 MB layer inflates one context's span, not the stream;
// the kernel mounts the bootstrap and the exported disk; bad input fails with one line.
import { describe, expect, it } from 'vitest';
import { scratch } from '../helpers/scratch.js';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { create } from '../../src/builder/create.js';
import { openImage } from '../../src/read/open.js';
import { BlobReader } from '../../src/read/data.js';
import { loadZranMeta, parseZranMeta } from '../../src/read/zran.js';
import * as metaHeader from '../../src/format/blob/meta-header.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import { ZranIndexer, inflateFrom } from '../../src/sources/zran.js';
import { tarSource } from '../../src/sources/tar.js';
import { isRegNode } from '../../src/tree/node.js';
import type { ImageNode } from '../../src/read/model.js';
import { nydusImage, nydusImageOk, loggedBlobId, UPSTREAM } from '../cli/cli-runner.js';
import { runOk } from '../helpers/tools.js';
import { compareTrees } from '../helpers/compare.js';
import { kernelSupport, mountErofs, skipLoudly } from '../helpers/kernel.js';
import { prng } from '../helpers/tree.js';

const ZRAN = join(UPSTREAM, 'zran');
const FIXTURES = ['zran-single-stream', 'zran-two-streams', 'zran-zero-file', 'bgzip'];
const UPSTREAM_META = join(ZRAN, '233c72f2b6b698c07021c4da367cfe2dff4f049efbaa885ca0ff760ea297865a.blob.meta');
const CONVERTER_FLAGS = ['--log-level', 'warn', '--type', 'targz-ref', '--blob-inline-meta', '--features', 'blob-toc'];
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const work = scratch('nydus-targz-ref-');
const fresh = work.fresh;

/** What tar itself makes of the .tar.gz: every member, as upstream reads them (zero blocks skipped). */
async function tarExtract(targz: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await runOk('tar', ['-C', dir, '--numeric-owner', '--ignore-zeros', '-xzf', targz]);
}

/** Unpacks a targz-ref image (its ref blob) with the .tar.gz as its blob, verifying chunk digests. */
async function unpackRef(ref: string, targz: string, dir: string): Promise<void> {
  const tar = `${dir}.tar`;
  await nydusImageOk(['unpack', ref, '--blob', targz, '--output', tar]);
  await mkdir(dir);
  await runOk('tar', ['-C', dir, '--numeric-owner', '-xf', tar]);
}

describe('create -t targz-ref: upstream fixtures', () => {
  for (const f of FIXTURES) {
    it(`${f}: the converter's argv builds a ref blob that unpacks equal to tar -xzf`, async () => {
      const dir = await fresh(f);
      const src = join(ZRAN, `${f}.tar.gz`);
      const ref = join(dir, 'blob.rafs');
      const r = await nydusImageOk(['create', ...CONVERTER_FLAGS, '--blob', ref, src]);
      expect(r.stderr.toString()).toBe('');
      const check = (await nydusImageOk(['check', ref])).stdout.toString();
      // The data blob is the .tar.gz: its id is the file's sha256, its size the file's.
      expect(check).toContain(`0: ${sha256(await readFile(src))}, compressed size ${fs.statSync(src).size},`);
      expect(check).toMatch(/features: aligned cap_toc chunk-digest chunk-v2 fs-meta separate tar-header toc zran\n/);
      await unpackRef(ref, src, join(dir, 'unpacked'));
      await tarExtract(src, join(dir, 'expected'));
      expect(await compareTrees(join(dir, 'expected'), join(dir, 'unpacked'), { ignoreRootMtime: true })).toEqual([]);
    });
  }

  it('reads its input through a FIFO and writes its ref blob to a FIFO (both as the converter passes them), and from stdin, byte for byte as from a file', async () => {
    const dir = await fresh('fifo');
    const src = join(ZRAN, 'bgzip.tar.gz');
    await nydusImageOk(['create', ...CONVERTER_FLAGS, '--blob', join(dir, 'file.rafs'), src]);
    const expected = await readFile(join(dir, 'file.rafs'));

    const w = join(dir, 'W');
    await mkdir(w);
    await runOk('mkfifo', [join(w, 'blob.rafs'), join(w, 'blob.targz')]);
    const child = nydusImage(['create', ...CONVERTER_FLAGS, '--blob', join(w, 'blob.rafs'), join(w, 'blob.targz')]);
    const feed = pipeline(fs.createReadStream(src), fs.createWriteStream(join(w, 'blob.targz')));
    const chunks: Buffer[] = [];
    const drain = (async () => {
      for await (const b of fs.createReadStream(join(w, 'blob.rafs'))) chunks.push(b as Buffer);
    })();
    const [r] = await Promise.all([child, feed, drain]);
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(Buffer.concat(chunks).equals(expected)).toBe(true);

    const s = await nydusImage(['create', ...CONVERTER_FLAGS, '--blob', join(dir, 'stdin.rafs'), '-'], { input: await readFile(src) });
    expect(s.code, s.stderr.toString()).toBe(0);
    expect((await readFile(join(dir, 'stdin.rafs'))).equals(expected)).toBe(true);
  });

  it('with -B and -D: a separate bootstrap whose blob entry records the ref blob (SEPARATE: blob_meta digest and size) and its TOC', async () => {
    const dir = await fresh('separate');
    const src = join(ZRAN, 'zran-two-streams.tar.gz');
    const r = await nydusImageOk(['create', '-t', 'targz-ref', '--features', 'blob-toc', '-B', join(dir, 'boot'), '-D', dir, src]);
    expect(loggedBlobId(r.stderr)).toBe(sha256(await readFile(src)));
    const image = openImage(join(dir, 'boot'));
    const b = image.blobs[0];
    const refName = fs.readdirSync(dir).filter((n) => n !== 'boot');
    expect(refName).toHaveLength(1);
    const refBytes = await readFile(join(dir, refName[0]));
    expect(b.metaDigest.toString('hex')).toBe(refName[0]);
    expect(b.metaSize).toBe(refBytes.length);
    // blob.meta, blob.meta.header and blob.digest: no image.boot in a ref blob whose bootstrap is separate.
    expect(b.tocSize).toBe(512 + 128 * 3);
    expect(b.features & (bt.FEATURE_SEPARATE | bt.FEATURE_ZRAN)).toBe(bt.FEATURE_SEPARATE | bt.FEATURE_ZRAN);
    // The reader finds the ZRAN table in the blob dir by that digest.
    const reader = new BlobReader(image, { blobDir: dir, files: new Map([[b.blobId, src]]) });
    try {
      const node = firstFile(image.root);
      expect(Buffer.concat([...reader.readFile(node, true)]).length).toBe(node.size);
    } finally {
      reader.close();
    }
  });
});

describe('ref blobs without blob-toc', () => {
  it('-B with -D, and --blob-inline-meta alone: the reader finds blob.meta where the blob entry places it (ci_offset, its header right after) and unpacks equal to tar -xzf', async () => {
    const dir = await fresh('no-toc');
    const src = join(ZRAN, 'zran-two-streams.tar.gz');
    await tarExtract(src, join(dir, 'expected'));
    const blobs = join(dir, 'blobs');
    await mkdir(blobs);
    await nydusImageOk(['create', '-t', 'targz-ref', '-B', join(dir, 'boot'), '-D', blobs, src]);
    const b = openImage(join(dir, 'boot')).blobs[0];
    // No TOC, no tar headers: the stored table, then its header, is the whole ref blob.
    expect(b.tocSize).toBe(0);
    expect(fs.statSync(join(blobs, b.metaDigest.toString('hex'))).size).toBe(b.ciOffset + b.ciCompressedSize + metaHeader.SIZE);
    fs.copyFileSync(src, join(blobs, b.blobId));
    const tar = join(dir, 'separate.tar');
    await nydusImageOk(['unpack', '-B', join(dir, 'boot'), '-D', blobs, '--output', tar]);
    await mkdir(join(dir, 'separate'));
    await runOk('tar', ['-C', join(dir, 'separate'), '--numeric-owner', '-xf', tar]);
    expect(await compareTrees(join(dir, 'expected'), join(dir, 'separate'), { ignoreRootMtime: true })).toEqual([]);

    const ref = join(dir, 'inline.rafs');
    await nydusImageOk(['create', '-t', 'targz-ref', '--blob-inline-meta', '--blob', ref, src]);
    await unpackRef(ref, src, join(dir, 'inline'));
    expect(await compareTrees(join(dir, 'expected'), join(dir, 'inline'), { ignoreRootMtime: true })).toEqual([]);
  });
});

describe('merge of ref layers, as the converter calls it', () => {
  it('bootstraps named by the gzip layers, --blob-digests/--blob-sizes/--blob-toc-digests of the ref blobs: the blob table names the .tar.gz files, SEPARATE blobs carry the ref blobs, and unpack reads through them', async () => {
    const dir = await fresh('merge');
    const layers = ['zran-zero-file', 'zran-two-streams'].map((f) => join(ZRAN, `${f}.tar.gz`));
    const hexes: string[] = [];
    const refDigests: string[] = [];
    const refSizes: number[] = [];
    const tocDigests: string[] = [];
    for (const src of layers) {
      const hex = sha256(await readFile(src));
      hexes.push(hex);
      // The converter extracts image.boot into <W>/<original hex>; the ref blob itself under that name serves as well.
      const ref = join(dir, hex);
      await nydusImageOk(['create', ...CONVERTER_FLAGS, '--blob', ref, src]);
      const bytes = await readFile(ref);
      refDigests.push(sha256(bytes));
      refSizes.push(bytes.length);
      const tocSize = 512 + Number.parseInt(bytes.subarray(bytes.length - 512 + 124, bytes.length - 512 + 135).toString(), 8);
      tocDigests.push(sha256(bytes.subarray(bytes.length - tocSize)));
      fs.copyFileSync(ref, join(dir, refDigests.at(-1)!));
    }
    const boot = join(dir, 'merged');
    await nydusImageOk(['merge', '--log-level', 'warn', '--bootstrap', boot, join(dir, hexes[0]), join(dir, hexes[1]),
      '--blob-digests', refDigests.join(','), '--blob-toc-digests', tocDigests.join(','), '--blob-sizes', refSizes.join(',')]);
    const image = openImage(boot);
    // In the table's own order (merge's business); each blob matched to its layer by id.
    expect(image.blobs.map((b) => b.blobId).sort()).toEqual([...hexes].sort());
    image.blobs.forEach((b) => {
      const i = hexes.indexOf(b.blobId);
      expect(b.metaDigest.toString('hex')).toBe(refDigests[i]);
      expect(b.metaSize).toBe(refSizes[i]);
      expect(b.tocDigest.toString('hex')).toBe(tocDigests[i]);
      expect(b.features & bt.FEATURE_SEPARATE).toBe(bt.FEATURE_SEPARATE);
    });
    // The reader finds each ZRAN table in the blob dir by the ref blob's digest; the data blobs are the .tar.gz files.
    const blobs = join(dir, 'blobs');
    await mkdir(blobs);
    for (const [i, src] of layers.entries()) {
      fs.copyFileSync(src, join(blobs, hexes[i]));
      fs.copyFileSync(join(dir, refDigests[i]), join(blobs, refDigests[i]));
    }
    await nydusImageOk(['unpack', boot, '--blob-dir', blobs, '--output', join(dir, 'merged.tar')]);
    await mkdir(join(dir, 'unpacked'));
    await runOk('tar', ['-C', join(dir, 'unpacked'), '--numeric-owner', '-xf', join(dir, 'merged.tar')]);
    const expected = join(dir, 'expected');
    for (const src of layers) await tarExtract(src, expected);
    expect(await compareTrees(expected, join(dir, 'unpacked'), { ignoreRootMtime: true, skip: ['mtime'] })).toEqual([]);
  });
});

function firstFile(root: ImageNode): ImageNode {
  const stack = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.chunks && n.chunks.length > 0) return n;
    for (const c of n.children ?? []) stack.push(c);
  }
  throw new Error('no file with data');
}

/** Indexes a .tar.gz with upstream's test thresholds, reading every file in 512-byte pieces as upstream's tests do. */
async function indexWithTestLimits(file: string): Promise<ZranIndexer> {
  const z = new ZranIndexer(512, file, { minComp: 1024, maxComp: 2048, maxUncomp: 4096 });
  for await (const e of tarSource(z.inflate(file) as unknown as NodeJS.ReadableStream, { gzip: 'never' })) {
    if (isRegNode(e.node) && e.dataOffset !== undefined) z.addFile(e.dataOffset, e.node.size, () => {});
  }
  return z;
}

describe('ZRAN tables: upstream blob.meta and upstream test inputs', () => {
  it("upstream's blob.meta (233c72f2…) parses: 0xa3 chunks, 0x15 contexts, 0xa0348 - 0x15 × 40 bytes of windows, every chunk inside its context", async () => {
    const file = await readFile(UPSTREAM_META);
    const header = metaHeader.decode(file, file.length - metaHeader.SIZE);
    // The numbers upstream's storage/src/meta/mod.rs tests assert for this file.
    expect(header.s_ci_entries).toBe(0xa3);
    expect(header.s_ci_uncompressed_size).toBe(0xa1290);
    const meta = parseZranMeta(file.subarray(0, header.s_ci_uncompressed_size), header, 0xa3, UPSTREAM_META);
    expect(meta.contexts).toHaveLength(0x15);
    expect(meta.contexts.reduce((n, c) => n + c.dict.length, 0)).toBe(0xa0348 - 0x15 * 40);
    // The shape our builder gives its contexts too: in order, the first without a window, the others with 32 KiB.
    expect(meta.contexts[0].dict.length).toBe(0);
    for (let i = 1; i < meta.contexts.length; i++) {
      expect(meta.contexts[i].inOffset).toBeGreaterThan(meta.contexts[i - 1].inOffset);
      expect(meta.contexts[i].outOffset).toBeGreaterThan(meta.contexts[i - 1].outOffset);
      expect(meta.contexts[i].dict.length).toBe(32768);
    }
    // Chunk 0 sits at offset 0x400 of context 0 (blob.md §4.3, checked on these bytes).
    expect(meta.chunkCtx[0]).toBe(0);
    expect(meta.chunkOff[0]).toBe(0x400);
  });

  it('zran-two-streams with the thresholds of upstream\'s zlib_random.rs tests: 3 contexts, as upstream asserts, each inflating to its output', async () => {
    const src = join(ZRAN, 'zran-two-streams.tar.gz');
    const z = await indexWithTestLimits(src);
    expect(z.contexts).toHaveLength(3);
    const gz = await readFile(src);
    const whole = await gunzipAll(src);
    for (const c of z.contexts) {
      const out = inflateFrom(c, gz.subarray(c.inOffset, c.inOffset + c.inLen), c.outLen);
      expect(out.equals(whole.subarray(c.outOffset, c.outOffset + c.outLen))).toBe(true);
    }
  });

  it('bgzip (a gzip member every 64 KiB): every context inflates to the stream\'s own bytes, across member ends', async () => {
    const src = join(ZRAN, 'bgzip.tar.gz');
    const z = await indexWithTestLimits(src);
    expect(z.contexts.length).toBeGreaterThan(10);
    const gz = await readFile(src);
    const whole = await gunzipAll(src);
    for (const c of z.contexts) {
      const out = inflateFrom(c, gz.subarray(c.inOffset, c.inOffset + c.inLen), c.outLen);
      expect(out.equals(whole.subarray(c.outOffset, c.outOffset + c.outLen))).toBe(true);
    }
  });
});

async function gunzipAll(file: string): Promise<Buffer> {
  const r = await runOk('gzip', ['-dc', file]);
  return r.stdout;
}

describe('random access', () => {
  it('reading the last file of a ~200 MB layer inflates one context span and returns its bytes', async () => {
    const dir = await fresh('big');
    const root = join(dir, 'root');
    await mkdir(root);
    // 40 files of 5 MiB of letters (compressible, so the layer is quick to make), then a small last one.
    const letters = (seed: number, n: number) => {
      const b = prng(seed, n);
      for (let i = 0; i < n; i++) b[i] = 0x61 + (b[i] & 0x0f);
      return b;
    };
    for (let i = 0; i < 40; i++) await writeFile(join(root, `f${String(i).padStart(2, '0')}`), letters(i + 1, 5 << 20));
    const last = letters(999, 300_000);
    await writeFile(join(root, 'zz-last'), last);
    const targz = join(dir, 'layer.tar.gz');
    const tar = spawn('tar', ['-C', root, '--sort=name', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await pipeline(tar.stdout, createGzip({ level: 1 }), fs.createWriteStream(targz));
    const ref = join(dir, 'ref.rafs');
    const r = await create({ source: targz, type: 'targz-ref', blob: ref, blobInlineMeta: true, blobToc: true });
    expect(r.blobs).toEqual([sha256(await readFile(targz))]);

    const image = openImage(ref);
    const node = image.root.children!.find((c) => c.name.toString() === 'zz-last')!;
    const reader = new BlobReader(image, { blob: targz, imageFile: ref });
    try {
      const got = Buffer.concat([...reader.readFile(node, true)]);
      expect(got.equals(last)).toBe(true);
      const spans = parseSpans(ref);
      const inflated = reader.inflatedBytes;
      console.log(`random access: the last file (${last.length} bytes) of a ${fs.statSync(targz).size}-byte .tar.gz (${spans.total} bytes of tar) inflated ${inflated} bytes (largest context span ${spans.max})`);
      expect(inflated).toBeGreaterThanOrEqual(last.length);
      expect(inflated).toBeLessThanOrEqual(spans.max);
    } finally {
      reader.close();
    }
  }, 600_000);
});

/** The ZRAN contexts' output spans of a ref blob. */
function parseSpans(ref: string): { max: number; total: number } {
  // The table lives in the ref blob.
  const meta = loadZranMeta(openImage(ref).blobs[0], ref, undefined);
  const max = Math.max(...meta.contexts.map((c) => c.outLen));
  const lastCtx = meta.contexts[meta.contexts.length - 1];
  return { max, total: lastCtx.outOffset + lastCtx.outLen };
}

describe('the kernel judges targz-ref', () => {
  it('the bootstrap mounts alone (metadata), and export --block with the .tar.gz as blob mounts and equals the source tree', async (ctx) => {
    const k = kernelSupport();
    if (!k.ok) skipLoudly(ctx, k.why!);
    for (const f of ['bgzip', 'zran-two-streams']) {
      const dir = await fresh(`kernel-${f}`);
      const src = join(ZRAN, `${f}.tar.gz`);
      await tarExtract(src, join(dir, 'expected'));
      const blobs = join(dir, 'blobs');
      await mkdir(blobs);
      await nydusImageOk(['create', '-t', 'targz-ref', '-B', join(dir, 'boot'), '-D', blobs, src]);
      const meta = await mountErofs(join(dir, 'boot'), { loop: true });
      try {
        expect(await compareTrees(join(dir, 'expected'), meta.dir, { ignoreRootMtime: true, contents: false })).toEqual([]);
      } finally {
        await meta.unmount();
      }

      const ref = join(dir, 'blob.rafs');
      await nydusImageOk(['create', ...CONVERTER_FLAGS, '--blob', ref, src]);
      const disk = join(dir, 'disk.img');
      fs.copyFileSync(src, join(blobs, sha256(await readFile(src))));
      await nydusImageOk(['export', '--block', '-B', ref, '-D', blobs, '-O', disk]);
      const m = await mountErofs(disk, { loop: true });
      try {
        expect(await compareTrees(join(dir, 'expected'), m.dir, { ignoreRootMtime: true })).toEqual([]);
      } finally {
        await m.unmount();
      }
    }
  }, 300_000);
});

describe('bad input: one line, non-zero exit, nothing under the final name', () => {
  const failing = async (args: string[], outputs: string[], pattern: RegExp) => {
    const r = await nydusImage(args);
    const err = r.stderr.toString().trim();
    expect(r.code, err).toBe(1);
    expect(err.split('\n')).toHaveLength(1);
    expect(err).toMatch(pattern);
    for (const o of outputs) expect(fs.existsSync(o), o).toBe(false);
  };

  it('corrupt gzip data', async () => {
    const dir = await fresh('corrupt');
    const gz = Buffer.from(await readFile(join(ZRAN, 'bgzip.tar.gz')));
    for (let i = 0; i < 64; i++) gz[1_000_000 + i] ^= 0xa5;
    await writeFile(join(dir, 'bad.tar.gz'), gz);
    // Garbage that still inflates reaches the tar parser first; either way one line names the file.
    await failing(['create', ...CONVERTER_FLAGS, '--blob', join(dir, 'out.rafs'), join(dir, 'bad.tar.gz')], [join(dir, 'out.rafs')], /bad\.tar\.gz: (corrupt gzip data near byte \d+|bad tar header)/);
    // A member whose CRC does not match its data: the inflater's own check.
    const crc = Buffer.from(await readFile(join(ZRAN, 'zran-single-stream.tar.gz')));
    crc[crc.length - 8] ^= 0xff;
    await writeFile(join(dir, 'crc.tar.gz'), crc);
    await failing(['create', ...CONVERTER_FLAGS, '--blob', join(dir, 'crc.rafs'), join(dir, 'crc.tar.gz')], [join(dir, 'crc.rafs')], /crc\.tar\.gz: corrupt gzip data near byte \d+: incorrect data check/);
  });

  it('a truncated stream', async () => {
    const dir = await fresh('truncated');
    const gz = await readFile(join(ZRAN, 'zran-two-streams.tar.gz'));
    await writeFile(join(dir, 'cut.tar.gz'), gz.subarray(0, gz.length - 100));
    await failing(['create', '-t', 'targz-ref', '-B', join(dir, 'boot'), '-D', dir, join(dir, 'cut.tar.gz')], [join(dir, 'boot')], /truncated gzip stream|truncated tar/);
    expect(fs.readdirSync(dir)).toEqual(['cut.tar.gz']);
  });

  it('input that is not gzip', async () => {
    const dir = await fresh('plain');
    await writeFile(join(dir, 'plain.tar'), Buffer.alloc(10240));
    await failing(['create', ...CONVERTER_FLAGS, '--blob', join(dir, 'out.rafs'), join(dir, 'plain.tar')], [join(dir, 'out.rafs')], /not a gzip stream/);
  });

  it('a wrong --blob-id (not the sha256 of the .tar.gz)', async () => {
    const dir = await fresh('blob-id');
    const src = join(ZRAN, 'zran-single-stream.tar.gz');
    await failing(['create', '-t', 'targz-ref', '--blob-id', 'ab'.repeat(32), '-B', join(dir, 'boot'), '--blob', join(dir, 'ref'), src], [join(dir, 'boot'), join(dir, 'ref')], /--blob-id a{1}b.* is not the sha256 of the input/);
  });

  it('a ref blob whose TOC points past its end', async () => {
    const dir = await fresh('toc');
    const src = join(ZRAN, 'zran-single-stream.tar.gz');
    const ref = join(dir, 'ref.rafs');
    await nydusImageOk(['create', ...CONVERTER_FLAGS, '--blob', ref, src]);
    const b = Buffer.from(await readFile(ref));
    // The TOC's last entry (image.boot) sits just before the final tar header: move it past the end.
    const entry = b.length - 512 - 128;
    b.writeBigUInt64LE(BigInt(b.length + 4096), entry + 56);
    await writeFile(ref, b);
    await failing(['unpack', ref, '--blob', src, '--output', join(dir, 'out.tar')], [join(dir, 'out.tar')], /past the end/);
  });

  it('a .tar.gz that does not match the image (unpack with another file as blob)', async () => {
    const dir = await fresh('mismatch');
    const ref = join(dir, 'ref.rafs');
    await nydusImageOk(['create', ...CONVERTER_FLAGS, '--blob', ref, join(ZRAN, 'bgzip.tar.gz')]);
    await failing(['unpack', ref, '--blob', join(ZRAN, 'zran-two-streams.tar.gz'), '--output', join(dir, 'out.tar')], [join(dir, 'out.tar')], /shorter than referenced|does not inflate|digest mismatch/);
  });
});
