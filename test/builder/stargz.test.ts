// The eStargz conversions end to end, through the CLI: a tree of every entry type tarred by GNU
// tar and made into an eStargz layer by our producer (test/helpers/estargz.ts), then built with
// `create -t stargz_index` (from its stargz.index.json, as the snapshotter does, and from the blob
// itself), `estargztoc-ref --blob-data-size`, `estargz-rafs` and `estargz-ref` (the zran ref blob
// over the layer, the converter's argv, FIFOs and stdin); each image is checked (every
// chunk digest-verified against the eStargz blob), unpacked and compared with the source tree,
// and exported with --block for the kernel to mount and show the same tree. Upstream's
// estargz_sample.json builds; a layer on --parent-bootstrap shows both layers with the OCI
// whiteouts applied; bad input (sha256: ids, a wrong --blob-id, a TOC pointing past the end, a
// truncated or corrupt blob) fails with one line, a non-zero exit and nothing left behind.
import { beforeAll, describe, expect, it } from 'vitest';
import { scratch } from '../helpers/scratch.js';
import { chmod, link, mkdir, readdir, readFile, rm, symlink, utimes, writeFile, copyFile } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { stargzify, type Estargz } from '../helpers/estargz.js';
import { compareTrees } from '../helpers/compare.js';
import { kernelSupport, mountErofs, skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { mknod, prng } from '../helpers/tree.js';
import { runOk } from '../helpers/tools.js';
import { nydusImage, nydusImageOk, UPSTREAM } from '../cli/cli-runner.js';
import { openImage } from '../../src/read/open.js';
import { readBackAndCompare } from './read-back.js';
import { BlobReader } from '../../src/read/data.js';
import { NydusError } from '../../src/errors.js';
import { gzipSizeBound } from '../../src/sources/stargz.js';
import { ShortGzipMember, inflateMemberPrefix } from '../../src/format/stargz/gzip.js';

const CHUNK = 0x10000;
const kernel = kernelSupport();
const work = scratch('nydus-stargz-');
let src = '';
let layer: Estargz;
let blobFile = '';
let tocFile = '';

const T0 = 1_700_000_000;

/** A tree of every entry type eStargz carries; mtimes whole seconds (the TOC keeps seconds). */
async function buildTree(root: string): Promise<void> {
  await mkdir(join(root, 'a', 'b', 'c'), { recursive: true });
  await mkdir(join(root, 'empty-dir'));
  await writeFile(join(root, 'a', 'small.txt'), 'hello, estargz\n');
  await writeFile(join(root, 'zero'), '');
  await writeFile(join(root, 'a', 'b', 'big.bin'), prng(1, 2 * CHUNK + 12_345));
  await writeFile(join(root, 'a', 'b', 'c', 'exact.bin'), prng(2, 2 * CHUNK));
  await writeFile(join(root, 'one-chunk.bin'), prng(3, CHUNK));
  await writeFile(join(root, 'zeros.bin'), Buffer.alloc(3 * CHUNK));
  await link(join(root, 'a', 'small.txt'), join(root, 'hard.txt'));
  await link(join(root, 'a', 'b', 'big.bin'), join(root, 'a', 'big-link.bin'));
  await symlink('a/small.txt', join(root, 'rel-link'));
  await symlink('/etc/passwd', join(root, 'abs-link'));
  await symlink('nowhere', join(root, 'dangling'));
  await chmod(join(root, 'one-chunk.bin'), 0o4755);
  await runOk('mkfifo', [join(root, 'fifo')]);
  await mknod(join(root, 'null-dev'), 'char', 0o644, 1, 3);
  await runOk('setfattr', ['-n', 'user.color', '-v', 'blue', join(root, 'a', 'small.txt')]);
  await runOk('setfattr', ['-n', 'user.bin', '-v', '0sAAEC/w==', join(root, 'a')]);
  await runOk('chown', ['-h', '1234:5678', join(root, 'a', 'b', 'big.bin')]);
  const all = ['a/small.txt', 'zero', 'a/b/big.bin', 'a/b/c/exact.bin', 'one-chunk.bin', 'zeros.bin', 'fifo', 'null-dev', 'a/b/c', 'a/b', 'empty-dir', 'a'];
  for (const [i, p] of all.entries()) await utimes(join(root, p), T0 + i, T0 + i);
  for (const l of ['rel-link', 'abs-link', 'dangling']) await runOk('touch', ['-h', '-d', `@${T0}`, join(root, l)]);
}

/** Every mtime under root set to T0: the TOC keeps whole seconds. */
async function wholeSeconds(root: string): Promise<void> {
  await runOk('find', [root, '-exec', 'touch', '-h', '-d', `@${T0}`, '{}', '+']);
}

async function tarOf(root: string): Promise<Buffer> {
  const r = await runOk('tar', ['--xattrs', '--xattrs-include=*', '--format=pax', '--numeric-owner', '--sort=name', '-C', root, '-cf', '-', '.']);
  return r.stdout;
}

beforeAll(async () => {
  src = work.path('src');
  await buildTree(src);
  layer = stargzify(await tarOf(src), { chunkSize: CHUNK });
  blobFile = work.path(layer.digest);
  await writeFile(blobFile, layer.blob);
  tocFile = work.path('stargz.index.json');
  await writeFile(tocFile, layer.tocJson);
}, 60_000);

const fresh = work.fresh;

/** Unpacks the image with our unpack, extracts the tar with GNU tar and compares it with `expected`. */
async function unpackAndCompare(boot: string, blobArgs: string[], expected: string): Promise<string[]> {
  const out = await fresh('unpack');
  await nydusImageOk(['unpack', '-B', boot, ...blobArgs, '--output', join(out, 'fs.tar')]);
  const dir = join(out, 'fs');
  await mkdir(dir);
  await runOk('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', dir, '-xpf', join(out, 'fs.tar')]);
  return compareTrees(expected, dir, { ignoreRootMtime: true });
}

/** The kernel's view of `export --block` (the eStargz blob as the image's only blob) against `expected`. */
async function exportAndMount(ctx: SkipContext, boot: string, blobDir: string, expected: string): Promise<string[]> {
  if (!kernel.ok) return skipLoudly(ctx, `kernel cannot mount EROFS here: ${kernel.why}`);
  const disk = join(await fresh('disk'), 'fs.disk');
  await nydusImageOk(['export', '--block', '-B', boot, '-D', blobDir, '-O', disk]);
  const m = await mountErofs(disk, { loop: true });
  try {
    return await compareTrees(expected, m.dir, { ignoreRootMtime: true });
  } finally {
    await m.unmount();
  }
}

/** Runs a create that must fail: one line on stderr matching `why`, the exit code, nothing under the output name. */
async function mustFail(args: string[], why: RegExp, exit = 1): Promise<string> {
  const out = await fresh('fail');
  const boot = join(out, 'boot');
  const r = await nydusImage(['create', '-B', boot, ...args]);
  const err = r.stderr.toString().trim();
  expect(r.code, err).toBe(exit);
  expect(err.split('\n').filter((l) => l.startsWith('Error:')), err).toHaveLength(1);
  expect(err).toMatch(why);
  expect(err).not.toMatch(/\n\s+at /);
  expect(await readdir(out)).toEqual([]);
  return err;
}

describe('eStargz producer', () => {
  it('writes a gzip stream GNU tar reads, a member per chunk, the TOC last and the 51-byte footer', async () => {
    const list = await runOk('tar', ['-tzf', blobFile]);
    const names = list.stdout.toString().trim().split('\n');
    expect(names).toContain('./a/b/big.bin');
    expect(names[names.length - 1]).toBe('stargz.index.json');
    const chunks = layer.toc.entries.filter((e) => e.name === './a/b/big.bin');
    expect(chunks.map((e) => [e.type, e.chunkOffset ?? 0])).toEqual([['reg', 0], ['chunk', CHUNK], ['chunk', 2 * CHUNK]]);
    // Every chunk's member inflates alone to its data.
    const { gunzipSync } = await import('node:zlib');
    const data = await readFile(join(src, 'a', 'b', 'big.bin'));
    for (const c of chunks) {
      const at = c.offset as number;
      const next = layer.toc.entries.map((e) => e.offset as number | undefined).filter((o): o is number => o !== undefined && o > at).sort((x, y) => x - y)[0] ?? layer.tocOffset;
      const off = (c.chunkOffset as number | undefined) ?? 0;
      expect(gunzipSync(layer.blob.subarray(at, next)).subarray(0, Math.min(CHUNK, data.length - off)).equals(data.subarray(off, off + CHUNK))).toBe(true);
    }
    expect(layer.blob.subarray(layer.blob.length - 51, layer.blob.length - 51 + 4).equals(Buffer.from([0x1f, 0x8b, 8, 4]))).toBe(true);
    expect(layer.blob.subarray(layer.blob.length - 51).toString('latin1')).toContain(`${layer.tocOffset.toString(16).padStart(16, '0')}STARGZ`);
  });
});

describe('create -t stargz_index / estargztoc-ref', () => {
  it('builds from stargz.index.json with --blob-id, as the snapshotter calls it, and reads back equal to the source', async () => {
    const out = await fresh('toc');
    const boot = join(out, 'boot');
    const r = await nydusImageOk(['create', '--source-type', 'stargz_index', '--bootstrap', boot, '--blob-id', layer.digest, '--repeatable', '--disable-check', '--fs-version', '6', '--chunk-size', `0x${CHUNK.toString(16)}`, tocFile]);
    expect(r.stderr.toString()).toContain(`data blobs: ["${layer.digest}"]`);
    const image = openImage(boot);
    expect(image.compressor).toBe('gzip');
    expect(image.digester).toBe('sha256');
    expect(image.blobs.map((b) => [b.blobId, b.compressor, b.chunkSize])).toEqual([[layer.digest, 'gzip', CHUNK]]);
    // Every chunk is one gzip member of the layer.
    const offsets = new Set(layer.toc.entries.map((e) => e.offset).filter((o) => o !== undefined));
    expect(image.chunkTable.length).toBe(offsets.size);
    for (const c of image.chunkTable) expect(offsets.has(c.compressedOffset)).toBe(true);
    const back = readBackAndCompare(image, { blob: blobFile }, src);
    expect(back.mismatches).toEqual([]);
    expect(back.files).toBeGreaterThan(5);
    // --repeatable stores no owners (big.bin is 1234:5678 in the layer).
    const owners = new Set<string>();
    const walkOwners = (n: typeof image.root) => {
      owners.add(`${n.uid}:${n.gid}`);
      for (const c of n.children ?? []) walkOwners(c);
    };
    walkOwners(image.root);
    expect([...owners]).toEqual(['0:0']);
    const check = await nydusImageOk(['check', '-B', boot, '--blob', blobFile]);
    expect(check.stdout.toString()).toContain(`${layer.digest}, compressed size`);
  });

  it('each way in (the TOC, the blob, --blob-data-size) unpacks and mounts (export --block) equal to the source tree', async (ctx) => {
    const dir = await fresh('blobdir');
    await copyFile(blobFile, join(dir, layer.digest));
    const ways: Array<[string, string[]]> = [
      ['stargz_index from the TOC', ['-t', 'stargz_index', '--blob-id', layer.digest, tocFile]],
      ['estargztoc-ref from the TOC with --blob-data-size', ['-t', 'estargztoc-ref', '--blob-id', layer.digest, '--blob-data-size', layer.tocOffset.toString(16), tocFile]],
      ['estargztoc-ref from the blob', ['-t', 'estargztoc-ref', blobFile]],
    ];
    for (const [what, args] of ways) {
      const boot = join(await fresh('way'), 'boot');
      await nydusImageOk(['create', '-B', boot, '--chunk-size', `0x${CHUNK.toString(16)}`, ...args]);
      expect(await unpackAndCompare(boot, ['--blob', blobFile], src), what).toEqual([]);
      await nydusImageOk(['check', '-B', boot, '-D', dir]);
      expect(await exportAndMount(ctx, boot, dir, src), what).toEqual([]);
    }
  });

  it('--blob-data-size bounds the last chunk by the data end; without it the bound is upstream gzip estimate', async () => {
    const boots = [];
    for (const extra of [['--blob-data-size', `0x${layer.tocOffset.toString(16)}`], []]) {
      const boot = join(await fresh('bds'), 'boot');
      await nydusImageOk(['create', '-t', 'estargztoc-ref', '-B', boot, '--blob-id', layer.digest, '--chunk-size', `0x${CHUNK.toString(16)}`, ...extra, tocFile]);
      boots.push(openImage(boot));
    }
    const lastOf = (img: ReturnType<typeof openImage>) => img.chunkTable.reduce((a, c) => (c.compressedOffset > a.compressedOffset ? c : a));
    expect(lastOf(boots[0]!).compressedOffset + lastOf(boots[0]!).compressedSize).toBeLessThanOrEqual(layer.tocOffset);
    const u = lastOf(boots[1]!).uncompressedSize;
    expect(lastOf(boots[1]!).compressedSize).toBe(u + 10 + 8 + 5 + Math.floor(u / 16384) * 5 + 128);
  });

  it('the default chunk size is 4 MiB, eStargz\'s own: a 9 MiB file in 4 MiB chunks reads back', async () => {
    const root = join(await fresh('big'), 'src');
    await mkdir(root);
    await writeFile(join(root, 'nine.bin'), prng(9, 9 << 20));
    const big = stargzify(await tarOf(root));
    const dir = await fresh('bigblob');
    await writeFile(join(dir, big.digest), big.blob);
    const boot = join(dir, 'boot');
    await nydusImageOk(['create', '-t', 'stargz_index', '-B', boot, '--blob-id', big.digest, join(dir, big.digest)]);
    const image = openImage(boot);
    expect(image.chunkSize).toBe(0x400000);
    expect(image.chunkTable.map((c) => c.uncompressedSize)).toEqual([4 << 20, 4 << 20, 1 << 20]);
    expect(readBackAndCompare(image, { blobDir: dir }, root).mismatches).toEqual([]);
  });

  it('a chunk whose member codes the following tar headers in one block reads past upstream\'s size estimate', async () => {
    // Incompressible data, then 300 symlink headers in the same member: zlib codes them in one
    // dynamic block, and the data alone takes more than upstream's bound (size + 151 bytes).
    const root = join(await fresh('estimate'), 'src');
    await mkdir(join(root, 'm'), { recursive: true });
    await writeFile(join(root, 'm', 'a.bin'), prng(11, 1505));
    for (let i = 0; i < 300; i++) await symlink(`../some/longer/target/name/${i}`, join(root, 'm', `b${String(i).padStart(3, '0')}`));
    await wholeSeconds(root);
    const l = stargzify(await tarOf(root), { chunkSize: CHUNK });
    const dir = await fresh('estimate-blob');
    await writeFile(join(dir, l.digest), l.blob);
    const boot = join(dir, 'boot');
    await nydusImageOk(['create', '-t', 'estargztoc-ref', '-B', boot, '--chunk-size', `0x${CHUNK.toString(16)}`, join(dir, l.digest)]);
    const image = openImage(boot);
    const c = image.chunkTable.find((x) => x.uncompressedSize === 1505)!;
    expect(c.compressedSize).toBe(gzipSizeBound(1505));
    expect(() => inflateMemberPrefix(l.blob.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize), 1505, 'x')).toThrow(ShortGzipMember);
    expect(readBackAndCompare(image, { blobDir: dir }, root).mismatches).toEqual([]);
    expect(await unpackAndCompare(boot, ['-D', dir], root)).toEqual([]);
  });

  it('a blob ending in the legacy 47-byte stargz footer builds from the blob itself', async () => {
    const legacy = stargzify(await tarOf(src), { chunkSize: CHUNK, legacyFooter: true });
    const dir = await fresh('legacy');
    await writeFile(join(dir, legacy.digest), legacy.blob);
    const boot = join(dir, 'boot');
    const r = await nydusImageOk(['create', '-t', 'estargztoc-ref', '-B', boot, '--chunk-size', `0x${CHUNK.toString(16)}`, join(dir, legacy.digest)]);
    expect(r.stderr.toString()).toContain(`data blobs: ["${legacy.digest}"]`);
    expect(readBackAndCompare(openImage(boot), { blobDir: dir }, src).mismatches).toEqual([]);
  });

  it('builds upstream\'s estargz_sample.json: the tree its TOC describes, landmark skipped, hardlink sharing the data', async () => {
    const out = await fresh('sample');
    const boot = join(out, 'boot');
    await nydusImageOk(['create', '-t', 'stargz_index', '-B', boot, '--blob-id', 'f'.repeat(64), join(UPSTREAM, 'stargz', 'estargz_sample.json')]);
    const image = openImage(boot);
    const names = (n: typeof image.root): string[] => (n.children ?? []).map((c) => c.name.toString());
    expect(names(image.root)).toEqual(['bin', 'lib']);
    const bin = image.root.children![0]!;
    expect(names(bin)).toEqual(['busybox', 'busybox2']);
    const [bb, bb2] = bin.children!;
    expect(bb!.ino).toBe(bb2!.ino);
    expect(bb!.nlink).toBe(2);
    expect(bb!.size).toBe(833104);
    expect(bb!.chunks!.map((c) => [c.compressedOffset, c.uncompressedSize])).toEqual([[126, 833104]]);
    expect(image.blobs[0]!.chunkCount).toBe(2);
    // The sample's chunk digests are the digests of the files' bytes.
    expect(bb!.chunks![0]!.digest.toString('hex')).toBe('8b7c559b8cccca0d30d01bc4b5dc944766208a53d18a03aa8afe97252207521f');
  });

  it('layers with --parent-bootstrap: the lower eStargz layer, the upper on it with its whiteouts applied', async (ctx) => {
    const lowerSrc = join(await fresh('lower'), 'src');
    await mkdir(join(lowerSrc, 'etc'), { recursive: true });
    await writeFile(join(lowerSrc, 'etc', 'keep'), 'kept\n');
    await writeFile(join(lowerSrc, 'etc', 'gone'), 'deleted above\n');
    await writeFile(join(lowerSrc, 'base.bin'), prng(5, CHUNK + 77));
    const upperSrc = join(await fresh('upper'), 'src');
    await mkdir(join(upperSrc, 'etc'), { recursive: true });
    await writeFile(join(upperSrc, 'etc', '.wh.gone'), '');
    await writeFile(join(upperSrc, 'etc', 'new'), 'added above\n');
    await writeFile(join(upperSrc, 'top.bin'), prng(6, 2 * CHUNK + 5));
    for (const root of [lowerSrc, upperSrc]) await wholeSeconds(root);
    const lower = stargzify(await tarOf(lowerSrc), { chunkSize: CHUNK });
    const upper = stargzify(await tarOf(upperSrc), { chunkSize: CHUNK });
    const dir = await fresh('layers');
    await writeFile(join(dir, lower.digest), lower.blob);
    await writeFile(join(dir, upper.digest), upper.blob);
    await writeFile(join(dir, 'lower.json'), lower.tocJson);
    await writeFile(join(dir, 'upper.json'), upper.tocJson);
    const cs = `0x${CHUNK.toString(16)}`;
    await nydusImageOk(['create', '--source-type', 'stargz_index', '--bootstrap', join(dir, 'parent-bootstrap'), '--blob-id', lower.digest, '--chunk-size', cs, join(dir, 'lower.json')]);
    await nydusImageOk(['create', '--source-type', 'stargz_index', '--parent-bootstrap', join(dir, 'parent-bootstrap'), '--bootstrap', join(dir, 'bootstrap'), '--blob-id', upper.digest, '--chunk-size', cs, join(dir, 'upper.json')]);
    const image = openImage(join(dir, 'bootstrap'));
    expect(image.blobs.map((b) => b.blobId)).toEqual([lower.digest, upper.digest]);

    // The expected tree: the lower layer with the upper applied (OCI whiteouts), as a directory.
    const merged = join(await fresh('merged'), 'src');
    await runOk('cp', ['-a', lowerSrc, merged]);
    await rm(join(merged, 'etc', 'gone'));
    await runOk('cp', ['-a', join(upperSrc, 'etc', 'new'), join(merged, 'etc', 'new')]);
    await runOk('cp', ['-a', join(upperSrc, 'top.bin'), join(merged, 'top.bin')]);
    await runOk('touch', ['-r', join(upperSrc, 'etc'), join(merged, 'etc')]);
    expect(await unpackAndCompare(join(dir, 'bootstrap'), ['-D', dir], merged)).toEqual([]);
    expect(await exportAndMount(ctx, join(dir, 'bootstrap'), dir, merged)).toEqual([]);

    // The snapshotter's way: each layer alone, its bootstrap named by the layer id (merge takes
    // the blob id from that name, as upstream), then `merge --bootstrap OUT` of the two.
    const boots = await fresh('alone');
    for (const [l, json] of [[lower, 'lower.json'], [upper, 'upper.json']] as const) {
      await nydusImageOk(['create', '--source-type', 'stargz_index', '--bootstrap', join(boots, l.digest), '--blob-id', l.digest, '--chunk-size', cs, join(dir, json)]);
    }
    await nydusImageOk(['merge', '--bootstrap', join(dir, 'merged-boot'), join(boots, lower.digest), join(boots, upper.digest)]);
    expect(openImage(join(dir, 'merged-boot')).blobs.map((b) => b.blobId)).toEqual([lower.digest, upper.digest]);
    expect(await unpackAndCompare(join(dir, 'merged-boot'), ['-D', dir], merged)).toEqual([]);
  });
});

describe('create -t estargz-rafs', () => {
  it('reads the eStargz layer as the tar.gz it is (TOC entry skipped) into a data blob that reads back equal', async (ctx) => {
    const dir = await fresh('rafs');
    const boot = join(dir, 'boot');
    const r = await nydusImageOk(['create', '-t', 'estargz-rafs', '-B', boot, '-D', dir, blobFile]);
    expect(r.stderr.toString()).toMatch(/data blobs: \["[0-9a-f]{64}"\]/);
    const image = openImage(boot);
    expect(image.compressor).toBe('zstd');
    const names = (image.root.children ?? []).map((c) => c.name.toString());
    expect(names).not.toContain('stargz.index.json');
    expect(await unpackAndCompare(boot, ['-D', dir], src)).toEqual([]);
    expect(await exportAndMount(ctx, boot, dir, src)).toEqual([]);
  });
});

describe('create -t estargz-ref', () => {
  // The converter's call for a ref layer, with the eStargz type (upstream builds both with its zran builder).
  const REF_FLAGS = ['--log-level', 'warn', '--type', 'estargz-ref', '--blob-inline-meta', '--features', 'blob-toc'];

  it('the converter-style argv builds a ref blob over the layer: blob id its sha256, TOC entry skipped, check verifies every chunk, unpack and the kernel\'s view of export --block equal the source', async (ctx) => {
    const dir = await fresh('ref');
    const ref = join(dir, 'blob.rafs');
    const r = await nydusImageOk(['create', ...REF_FLAGS, '--blob', ref, blobFile]);
    expect(r.stderr.toString()).toBe('');
    const image = openImage(ref);
    expect(image.blobs.map((b) => b.blobId)).toEqual([layer.digest]);
    expect((image.root.children ?? []).map((c) => c.name.toString())).not.toContain('stargz.index.json');
    // The data blob is the layer as it is: its size, footer included; the zran features of targz-ref.
    const check = await nydusImageOk(['check', ref, '--blob', blobFile]);
    expect(check.stdout.toString()).toContain(`0: ${layer.digest}, compressed size ${layer.blob.length},`);
    expect(check.stdout.toString()).toMatch(/features: aligned cap_toc chunk-digest chunk-v2 fs-meta separate tar-header toc zran\n/);
    // check reads every chunk: a layer with flipped bytes inside a file's member (same length) fails it.
    const big = layer.toc.entries.find((e) => e.name === './a/b/big.bin')!;
    const flipped = Buffer.from(layer.blob);
    for (let i = 20; i < 60; i++) flipped[(big.offset as number) + i] ^= 0x5a;
    await writeFile(join(dir, 'flipped'), flipped);
    const bad = await nydusImage(['check', ref, '--blob', join(dir, 'flipped')]);
    expect(bad.code, bad.stderr.toString()).toBe(1);
    expect(bad.stderr.toString().trim().split('\n')).toHaveLength(1);
    expect(bad.stderr.toString()).toMatch(/digest mismatch|corrupt gzip data|does not inflate/);
    expect(await unpackAndCompare(ref, ['--blob', blobFile], src)).toEqual([]);
    const blobs = await fresh('ref-blobs');
    await copyFile(blobFile, join(blobs, layer.digest));
    expect(await exportAndMount(ctx, ref, blobs, src)).toEqual([]);
  });

  it('reads the layer from a FIFO and writes the ref blob to a FIFO (as the converter passes them), and from stdin: byte for byte the ref blob built from the file', async () => {
    const dir = await fresh('ref-fifo');
    await nydusImageOk(['create', ...REF_FLAGS, '--blob', join(dir, 'file.rafs'), blobFile]);
    const expected = await readFile(join(dir, 'file.rafs'));
    const w = join(dir, 'W');
    await mkdir(w);
    await runOk('mkfifo', [join(w, 'blob.rafs'), join(w, 'blob.estargz')]);
    const child = nydusImage(['create', ...REF_FLAGS, '--blob', join(w, 'blob.rafs'), join(w, 'blob.estargz')]);
    const feed = pipeline(createReadStream(blobFile), createWriteStream(join(w, 'blob.estargz')));
    const chunks: Buffer[] = [];
    const drain = (async () => {
      for await (const b of createReadStream(join(w, 'blob.rafs'))) chunks.push(b as Buffer);
    })();
    const [r] = await Promise.all([child, feed, drain]);
    expect(r.code, r.stderr.toString()).toBe(0);
    expect(Buffer.concat(chunks).equals(expected)).toBe(true);
    const s = await nydusImage(['create', ...REF_FLAGS, '--blob', join(dir, 'stdin.rafs'), '-'], { input: layer.blob });
    expect(s.code, s.stderr.toString()).toBe(0);
    expect((await readFile(join(dir, 'stdin.rafs'))).equals(expected)).toBe(true);
  });

  it('with -B and -D: a layer carrying a prefetch landmark builds a bootstrap without it (as upstream skips it), read through the ref blob in -D and the layer beside it', async (ctx) => {
    const lm = await fresh('landmark');
    // eStargz's landmark: a one-byte regular file at the root (the Go writer's landmarkContents, 0xf).
    await writeFile(join(lm, '.prefetch.landmark'), Buffer.from([0xf]));
    const tar = await runOk('tar', ['--xattrs', '--xattrs-include=*', '--format=pax', '--numeric-owner', '--sort=name', '-cf', '-', '-C', src, '.', '-C', lm, '.prefetch.landmark']);
    const marked = stargzify(tar.stdout, { chunkSize: CHUNK });
    expect(marked.toc.entries.map((e) => e.name)).toContain('.prefetch.landmark');
    const dir = await fresh('ref-separate');
    const layerFile = join(lm, 'layer');
    await writeFile(layerFile, marked.blob);
    await nydusImageOk(['create', '-t', 'estargz-ref', '-B', join(dir, 'boot'), '-D', dir, layerFile]);
    const image = openImage(join(dir, 'boot'));
    expect(image.blobs.map((b) => b.blobId)).toEqual([marked.digest]);
    const names = (image.root.children ?? []).map((c) => c.name.toString());
    expect(names).not.toContain('.prefetch.landmark');
    expect(names).not.toContain('stargz.index.json');
    // -D holds the ref blob (named by its sha256, found through the blob entry's meta digest); the layer joins it.
    await copyFile(layerFile, join(dir, marked.digest));
    expect(await unpackAndCompare(join(dir, 'boot'), ['-D', dir], src)).toEqual([]);
    expect(await exportAndMount(ctx, join(dir, 'boot'), dir, src)).toEqual([]);
  });

  it('a truncated or corrupt layer, a wrong --blob-id, --blob-cache-dir: one line naming the problem, non-zero exit, nothing under the output name', async () => {
    const failing = async (args: string[], input: Buffer | undefined, why: RegExp, exit = 1) => {
      const dir = await fresh('ref-fail');
      const out = join(dir, 'out');
      await mkdir(out);
      let source = blobFile;
      if (input) await writeFile((source = join(dir, 'layer')), input);
      const r = await nydusImage(['create', '-t', 'estargz-ref', ...args.map((a) => a.replace('OUT', out)), source]);
      const err = r.stderr.toString().trim();
      expect(r.code, err).toBe(exit);
      expect(err.split('\n'), err).toHaveLength(1);
      expect(err).toMatch(why);
      expect(await readdir(out)).toEqual([]);
    };
    const inline = ['--blob-inline-meta', '--features', 'blob-toc', '--blob', 'OUT/blob.rafs'];
    // Cut inside the footer, inside the TOC member, inside a file's member.
    const big = layer.toc.entries.find((e) => e.name === './a/b/big.bin')!;
    for (const end of [layer.blob.length - 30, layer.tocOffset + 40, (big.offset as number) + 40]) {
      await failing(inline, layer.blob.subarray(0, end), /layer: truncated gzip stream: the input ends inside a gzip member after \d+ bytes/);
    }
    // Flipped bytes in a file's member: the inflater (or its CRC check, or the tar parser after it) says so.
    const flipped = Buffer.from(layer.blob);
    for (let i = 20; i < 60; i++) flipped[(big.offset as number) + i] ^= 0x5a;
    await failing(inline, flipped, /layer: (corrupt gzip data near byte \d+|bad tar header)/);
    // The CRC of the TOC member (its trailer ends where the footer starts).
    const crc = Buffer.from(layer.blob);
    crc[crc.length - 51 - 8] ^= 0xff;
    await failing(inline, crc, /layer: corrupt gzip data near byte \d+: incorrect data check/);
    await failing(['--blob-id', 'ab'.repeat(32), '-B', 'OUT/boot', '--blob', 'OUT/ref'], undefined, /--blob-id (ab)+ is not the sha256 of the input \([0-9a-f]{64}\): an estargz-ref blob is the eStargz layer itself/);
    await failing(['--blob-cache-dir', 'OUT', '-B', 'OUT/boot'], undefined, /conversion type `estargz-ref` conflicts with `--blob-cache-dir`/, 2);
  });
});

describe('refusals and bad input: one line, non-zero exit, nothing under the output name', () => {
  it('a layer id with its sha256: prefix is refused with upstream\'s note', async () => {
    const err = await mustFail(['-t', 'stargz_index', '--blob-id', `sha256:${layer.digest}`, tocFile], /should omit `sha256:` prefix/, 2);
    expect(err).toContain('the argument value of image layer id specified in nydus-image CLI should omit `sha256:` prefix');
  });

  it('a missing --blob-id for a TOC source, and a --blob-id that is not the blob\'s digest', async () => {
    await mustFail(['-t', 'stargz_index', tocFile], /'--blob-id' is missing for '--type stargz_index'/, 2);
    await mustFail(['-t', 'estargztoc-ref', '--blob-id', 'e'.repeat(64), '--chunk-size', `0x${CHUNK.toString(16)}`, blobFile], /is not this eStargz blob's id \(its sha256 is [0-9a-f]{64}\)/, 2);
  });

  it('a wrong --blob-id at read time: the blob named by it is not in -D', async () => {
    const out = await fresh('wrongid');
    const boot = join(out, 'boot');
    await nydusImageOk(['create', '-t', 'stargz_index', '-B', boot, '--blob-id', 'e'.repeat(64), '--chunk-size', `0x${CHUNK.toString(16)}`, tocFile]);
    const dir = await fresh('wrongid-blobs');
    await copyFile(blobFile, join(dir, layer.digest));
    const r = await nydusImage(['unpack', '-B', boot, '-D', dir, '--output', join(out, 'x.tar')]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString().trim().split('\n')).toHaveLength(1);
    expect(r.stderr.toString()).toMatch(/no such file or directory/);
    expect(await readdir(out)).toEqual(['boot']);
  });

  it('a TOC pointing past the end of the blob (--blob-data-size, or the blob\'s own TOC offset)', async () => {
    const toc = JSON.parse(layer.tocJson.toString());
    const reg = toc.entries.find((e: { name: string }) => e.name === './a/small.txt');
    reg.offset = layer.blob.length + 100;
    // Keep offsets increasing: the file is moved to the end of the entries.
    toc.entries = [...toc.entries.filter((e: unknown) => e !== reg && (e as { name: string }).name !== './hard.txt'), reg];
    const bad = join(await fresh('pastend'), 'toc.json');
    await writeFile(bad, JSON.stringify(toc));
    await mustFail(['-t', 'estargztoc-ref', '--blob-id', layer.digest, '--blob-data-size', layer.tocOffset.toString(16), '--chunk-size', `0x${CHUNK.toString(16)}`, bad], /past the end of the blob data/);
    // Without --blob-data-size the TOC alone cannot know the blob's end: the read names it.
    const boot = join(await fresh('pastend-read'), 'boot');
    await nydusImageOk(['create', '-t', 'stargz_index', '--blob-id', layer.digest, '-B', boot, '--chunk-size', `0x${CHUNK.toString(16)}`, bad]);
    const r = await nydusImage(['check', '-B', boot, '--blob', blobFile]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString().trim().split('\n')).toHaveLength(1);
    expect(r.stderr.toString()).toMatch(/blob is shorter than referenced: chunk \d+ needs bytes up to \d+, file has \d+/);
    // A footer whose TOC offset lies past the end.
    const blob = Buffer.from(layer.blob);
    blob.write(`${(blob.length + 10).toString(16).padStart(16, '0')}STARGZ`, blob.length - 51 + 16, 'latin1');
    const badBlob = join(await fresh('pastend-blob'), 'layer');
    await writeFile(badBlob, blob);
    await mustFail(['-t', 'estargztoc-ref', '--chunk-size', `0x${CHUNK.toString(16)}`, badBlob], /TOC offset \d+ lies past the end/);
  });

  it('a truncated blob: refused as a source, and a read of a chunk past its end fails cleanly', async () => {
    const cut = join(await fresh('trunc'), 'layer');
    await writeFile(cut, layer.blob.subarray(0, layer.blob.length - 30));
    await mustFail(['-t', 'estargztoc-ref', '--chunk-size', `0x${CHUNK.toString(16)}`, cut], /not an eStargz blob: no eStargz or stargz footer/);
    // A bootstrap built from the TOC, read against a blob cut inside big.bin's last member.
    const out = await fresh('trunc-read');
    const boot = join(out, 'boot');
    await nydusImageOk(['create', '-t', 'stargz_index', '-B', boot, '--blob-id', layer.digest, '--chunk-size', `0x${CHUNK.toString(16)}`, tocFile]);
    const last = layer.toc.entries.filter((e) => e.name === './a/b/big.bin').pop()!;
    const short = join(out, 'short');
    await writeFile(short, layer.blob.subarray(0, (last.offset as number) + 40));
    for (const cmd of [['check', '-B', boot, '--blob', short], ['unpack', '-B', boot, '--blob', short, '--output', join(out, 'x.tar')]]) {
      const r = await nydusImage(cmd);
      expect(r.code, r.stderr.toString()).toBe(1);
      expect(r.stderr.toString().trim().split('\n')).toHaveLength(1);
      expect(r.stderr.toString()).toMatch(/gzip data ends after \d+ of \d+ bytes|corrupt gzip data/);
    }
    expect((await readdir(out)).sort()).toEqual(['boot', 'short']);
  });

  it('corrupt gzip: a chunk member with flipped bytes, and a corrupt TOC member', async () => {
    const out = await fresh('corrupt');
    const boot = join(out, 'boot');
    await nydusImageOk(['create', '-t', 'stargz_index', '-B', boot, '--blob-id', layer.digest, '--chunk-size', `0x${CHUNK.toString(16)}`, tocFile]);
    const big = layer.toc.entries.find((e) => e.name === './a/b/big.bin')!;
    const bad = Buffer.from(layer.blob);
    for (let i = 20; i < 60; i++) bad[(big.offset as number) + i] ^= 0x5a;
    const badFile = join(out, 'bad');
    await writeFile(badFile, bad);
    const r = await nydusImage(['check', '-B', boot, '--blob', badFile]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString().trim().split('\n')).toHaveLength(1);
    expect(r.stderr.toString()).toMatch(/corrupt gzip data|digest mismatch|gzip data ends/);
    const badToc = Buffer.from(layer.blob);
    for (let i = 12; i < 40; i++) badToc[layer.tocOffset + i] ^= 0xa5;
    const badTocFile = join(await fresh('corrupt-toc'), 'layer');
    await writeFile(badTocFile, badToc);
    await mustFail(['-t', 'estargztoc-ref', '--chunk-size', `0x${CHUNK.toString(16)}`, badTocFile], /TOC gzip member at offset \d+|stargz: the TOC is not JSON/);
  });

  it('a TOC that is not valid: wrong version, chunks of another size, a bad digest, ".." in a name', async () => {
    const mutate = async (f: (toc: { version: number; entries: Array<Record<string, unknown>> }) => void) => {
      const toc = JSON.parse(layer.tocJson.toString());
      f(toc);
      const file = join(await fresh('badtoc'), 'toc.json');
      await writeFile(file, JSON.stringify(toc));
      return file;
    };
    const cs = ['--chunk-size', `0x${CHUNK.toString(16)}`];
    await mustFail(['-t', 'stargz_index', '--blob-id', 'x1', ...cs, await mutate((t) => (t.version = 2))], /unsupported index version 2/);
    await mustFail(['-t', 'stargz_index', '--blob-id', 'x1', '--chunk-size', '0x20000', tocFile], /build with the --chunk-size the eStargz layer was made with/);
    await mustFail(['-t', 'stargz_index', '--blob-id', 'x1', ...cs, await mutate((t) => (t.entries.find((e) => e.type === 'chunk')!.chunkDigest = 'sha256:xyz'))], /invalid chunk digest/);
    await mustFail(['-t', 'stargz_index', '--blob-id', 'x1', ...cs, await mutate((t) => (t.entries[1]!.name = '../escape'))], /"\.\." in the path/);
    await mustFail(['-t', 'stargz_index', '--blob-id', 'x1', ...cs, await mutate((t) => (t.entries = []))], /TOC array is empty/);
    await mustFail(['-t', 'stargz_index', '--blob-id', 'x1', ...cs, await mutate((t) => (t.entries.filter((e) => e.offset !== undefined).pop()!.offset = 2 ** 41))], /is past 2\^40/);
    await mustFail(['-t', 'stargz_index', '--blob-id', 'x1', '--blob', work.path('x'), ...cs, tocFile], /conflicts with '--blob'/, 2);
    await mustFail(['-t', 'stargz_index', '--blob-id', 'x1', '--blob-data-size', 'xyz', ...cs, tocFile], /invalid blob data size "xyz"/, 2);
    await mustFail(['-t', 'tar-rafs', '-b', work.path('never'), '--blob-data-size', '100', tocFile], /--blob-data-size only applies to --type estargztoc-ref/);
  });
});

/** A seeded generator of integers below n (a linear congruential one: the same cases each run). */
function lcg(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
}

/** Reads (and verifies) every chunk of the image from `blob`; returns how many failed, each with a one-line NydusError. */
function readEveryChunk(image: ReturnType<typeof openImage>, blob: string, what: string): number {
  const reader = new BlobReader(image, { blob });
  let failed = 0;
  try {
    for (const c of image.chunkTable) {
      try {
        reader.readChunk(c, true);
      } catch (e) {
        if (!(e instanceof NydusError)) throw new Error(`${what}, chunk ${c.index}: ${(e as Error).stack}`);
        expect((e as Error).message).not.toContain('\n');
        failed++;
      }
    }
  } finally {
    reader.close();
  }
  return failed;
}

describe('hostile TOCs', () => {
  it('400 random mutations of a real TOC: each builds, or fails with a NydusError; what builds reads back or fails with one', async () => {
    const { create } = await import('../../src/builder/create.js');
    const rand = lcg(0x5eed);
    const values: unknown[] = [-1, 0, 1, 7, 4096, CHUNK, CHUNK - 1, CHUNK + 1, 2 ** 40, 2 ** 53, 1.5, 'x', '', null, {}, [], '../x', '/', './', 'a//b/', 'sha256:' + '0'.repeat(64), layer.blob.length, layer.tocOffset, 'dir', 'reg', 'chunk', 'hardlink', 'symlink', 'fifo', { 'user.x': 'AA==' }, { 'bad.x': 'AA==' }];
    const fields = ['name', 'type', 'size', 'offset', 'chunkOffset', 'chunkSize', 'chunkDigest', 'linkName', 'mode', 'uid', 'devMajor', 'xattrs', 'innerOffset', 'modtime'];
    const dir = await fresh('hostile');
    let built = 0;
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      const toc = JSON.parse(layer.tocJson.toString());
      const entries = toc.entries as Array<Record<string, unknown>>;
      for (let k = 0, n = 1 + rand(3); k < n; k++) {
        const what = rand(10);
        if (what === 0) entries.splice(rand(entries.length), 1);
        else if (what === 1) entries.push({ ...entries[rand(entries.length)] });
        else if (what === 2) entries.reverse();
        else entries[rand(entries.length)]![fields[rand(fields.length)]!] = values[rand(values.length)];
      }
      const file = join(dir, `toc-${i}.json`);
      await writeFile(file, JSON.stringify(toc));
      const boot = join(dir, `boot-${i}`);
      try {
        await create({ type: 'stargz_index', source: file, bootstrap: boot, blobId: layer.digest, chunkSize: CHUNK, blobDataSize: layer.tocOffset });
      } catch (e) {
        if (!(e instanceof NydusError)) throw new Error(`mutation ${i}: ${(e as Error).stack}`);
        expect((e as Error).message).not.toContain('\n');
        refused++;
        continue;
      }
      built++;
      const image = openImage(boot);
      readEveryChunk(image, blobFile, `mutation ${i}`);
    }
    // Both outcomes happen: the mutations are neither all harmless nor all fatal.
    expect(built).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(20);
  }, 300_000);

  it('200 blobs with random bytes flipped or cut: every chunk reads its bytes or fails with a NydusError', async () => {
    const dir = await fresh('flips');
    const boot = join(dir, 'boot');
    await nydusImageOk(['create', '-t', 'stargz_index', '-B', boot, '--blob-id', layer.digest, '--chunk-size', `0x${CHUNK.toString(16)}`, tocFile]);
    const image = openImage(boot);
    const rand = lcg(0xf11b);
    let failed = 0;
    for (let i = 0; i < 200; i++) {
      let bad = Buffer.from(layer.blob);
      for (let k = 0, n = 1 + rand(20); k < n; k++) bad[rand(bad.length)] ^= 1 + rand(255);
      if (rand(4) === 0) bad = bad.subarray(0, rand(bad.length));
      const file = join(dir, 'blob');
      await writeFile(file, bad);
      failed += readEveryChunk(image, file, `blob ${i}`);
    }
    expect(failed).toBeGreaterThan(50);
  }, 300_000);
});
