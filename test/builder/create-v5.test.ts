// RAFS v5 output judged from outside: the hostile tree built as v5 from a directory, a tar and a
// gzipped tar, unpacked, extracted by GNU tar as root and compared with the source; the same
// tree built as v6 unpacks to the same tar; --aligned-chunk moves only the uncompressed offsets;
// layers on a v5 parent; and what v5 cannot carry refused in one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create } from '../../src/builder/create.js';
import { merge } from '../../src/builder/merge.js';
import { NydusError } from '../../src/errors.js';
import * as v5 from '../../src/format/rafs/v5.js';
import { isReg } from '../../src/read/model.js';
import { openImage } from '../../src/read/open.js';
import { unpack } from '../../src/read/unpack.js';
import { compareTrees } from '../helpers/compare.js';
import { skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { hasTool, runOk } from '../helpers/tools.js';
import { buildHostileTree, prng, type TreeManifest } from '../helpers/tree.js';
import { imageEntries } from './read-back.js';

let work = '';
let src = '';
let manifest: TreeManifest | undefined;
let srcTar = '';
let srcTgz = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-create-v5-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

let built: Promise<TreeManifest> | undefined;
async function need(ctx: SkipContext): Promise<TreeManifest> {
  if (process.getuid?.() !== 0) return skipLoudly(ctx, 'the hostile tree and GNU tar extraction need root');
  if (!hasTool('tar')) return skipLoudly(ctx, 'GNU tar is not on PATH');
  built ??= (async () => {
    src = join(work, 'src');
    manifest = await buildHostileTree(src);
    // The same tree as a tar (GNU tar, xattrs kept; it leaves sockets out) and gzipped.
    srcTar = join(work, 'src.tar');
    await runOk('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', src, '-cf', srcTar, '.']);
    srcTgz = join(work, 'src.tar.gz');
    await writeFile(srcTgz, gzipSync(await readFile(srcTar)));
    return manifest;
  })();
  return built;
}

/** GNU tar as root into a fresh directory made like the source root (unpack writes no root entry). */
async function extract(tarFile: string, dest: string): Promise<void> {
  await mkdir(dest);
  await chmod(dest, 0o755);
  await runOk('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-owner', '--same-permissions', '-xf', tarFile, '-C', dest]);
}

async function buildAndUnpack(name: string, o: Parameters<typeof create>[0]): Promise<{ boot: string; blobDir: string; tar: string }> {
  const dir = join(work, name);
  const blobDir = join(dir, 'blobs');
  await mkdir(blobDir, { recursive: true });
  const boot = join(dir, 'boot');
  await create({ ...o, bootstrap: boot, blobDir });
  const tar = join(dir, 'out.tar');
  await unpack({ bootstrap: boot, blobDir, output: tar });
  return { boot, blobDir, tar };
}

const sockets = (m: TreeManifest) => {
  const set = new Set(m.byKind.socket.map((p) => p.toString('latin1')));
  return (rel: Buffer) => set.has(rel.toString('latin1'));
};

describe('create --fs-version 5 from each source, unpacked and extracted by GNU tar', () => {
  for (const [kind, type] of [['dir', 'dir-rafs'], ['tar', 'tar-rafs'], ['targz', 'targz-rafs']] as const) {
    it(`${kind}: a RAFS v5 image whose unpack equals the source but for the root and sockets`, async (ctx) => {
      const m = await need(ctx);
      const source = kind === 'dir' ? src : kind === 'tar' ? srcTar : srcTgz;
      const b = await buildAndUnpack(`v5-${kind}`, { source, type, fsVersion: 5, compressor: 'zstd' });
      const image = openImage(b.boot);
      expect(image.version).toBe(5);
      expect((await readFile(b.boot)).readUInt32LE(0)).toBe(v5.MAGIC);
      const dest = join(work, `x-v5-${kind}`);
      await extract(b.tar, dest);
      // The tar's own mtimes are whole seconds; nanoseconds are compared by the v6/v5 test below.
      expect(await compareTrees(src, dest, { ignoreRootMtime: true, skip: ['mtime'], ignore: sockets(m) })).toEqual([]);
    });
  }

  it('the same tree built as v6 and as v5 unpacks to the same tar, byte for byte', async (ctx) => {
    await need(ctx);
    const a = await buildAndUnpack('same-v6', { source: src, fsVersion: 6 });
    const b = await buildAndUnpack('same-v5', { source: src, fsVersion: 5 });
    const ta = await readFile(a.tar);
    const tb = await readFile(b.tar);
    expect(tb.length).toBe(ta.length);
    expect(tb.equals(ta)).toBe(true);
    // And the images agree entry by entry (mode, owner, nanosecond mtime, xattrs, targets, sizes).
    const describe5 = (boot: string) => [...imageEntries(openImage(boot).root)].map(([rel, n]) => [
      rel.toString('latin1'), n.mode, n.uid, n.gid, `${n.mtime}.${n.mtimeNsec}`, isReg(n.mode) ? n.size : 0, n.target?.toString('hex') ?? '',
      n.xattrs.map((x) => `${x.name.toString('latin1')}=${x.value.toString('hex')}`).join(','),
    ]);
    expect(describe5(b.boot)).toEqual(describe5(a.boot));
  });
});

describe('RAFS v5 layout rules', () => {
  it('chunks are packed unless --aligned-chunk, which 4 KiB-aligns their uncompressed offsets only', async () => {
    const dir = join(work, 'align-src');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'a'), prng(11, 5000));
    await writeFile(join(dir, 'b'), prng(12, 3));
    await writeFile(join(dir, 'c'), prng(13, 70_000));
    const offsets = async (aligned: boolean) => {
      const out = join(work, `align-${aligned}`);
      await mkdir(out, { recursive: true });
      await create({ source: dir, bootstrap: join(out, 'boot'), blobDir: out, fsVersion: 5, chunkSize: 0x10000, compressor: 'none', alignedChunk: aligned });
      const image = openImage(join(out, 'boot'));
      return { chunks: image.chunkTable.map((c) => [c.uncompressedOffset, c.compressedOffset, c.uncompressedSize]), blob: image.blobs[0]! };
    };
    const packed = await offsets(false);
    const aligned = await offsets(true);
    // a: 5000; b: 3; c: 65536 + 4464 (file order a, b, c).
    expect(packed.chunks).toEqual([[0, 0, 5000], [5000, 5000, 3], [5003, 5003, 0x10000], [5003 + 0x10000, 5003 + 0x10000, 4464]]);
    expect(aligned.chunks).toEqual([[0, 0, 5000], [8192, 5000, 3], [12288, 5003, 0x10000], [12288 + 0x10000, 5003 + 0x10000, 4464]]);
    expect(packed.blob.uncompressedSize).toBe(5003 + 0x10000 + 4464);
    expect(aligned.blob.uncompressedSize).toBe(12288 + 0x10000 + 8192);
    // No blob.meta in a v5 blob: the extended table's compressed size is the chunk bytes.
    expect(packed.blob.compressedSize).toBe(5003 + 0x10000 + 4464);
  });

  it('a layer on a v5 parent, and v5 layers merged, give the tree of the layers applied', async () => {
    const lower = join(work, 'layer-lower');
    const upper = join(work, 'layer-upper');
    await mkdir(join(lower, 'd'), { recursive: true });
    await mkdir(join(upper, 'd'), { recursive: true });
    await writeFile(join(lower, 'd', 'keep'), 'keep');
    await writeFile(join(lower, 'd', 'gone'), 'gone');
    await writeFile(join(lower, 'shared'), prng(21, 200_000));
    await writeFile(join(upper, 'd', '.wh.gone'), '');
    await writeFile(join(upper, 'new'), prng(21, 200_000));
    const out = join(work, 'layers');
    await mkdir(out, { recursive: true });
    await create({ source: lower, bootstrap: join(out, 'lower.boot'), blobDir: out, fsVersion: 5 });
    // As the converter packs a layer: its whiteout markers kept as files, for merge to apply.
    await create({ source: upper, bootstrap: join(out, 'upper.boot'), blobDir: out, fsVersion: 5, whiteoutSpec: 'none' });
    await create({ source: upper, bootstrap: join(out, 'chained.boot'), blobDir: out, fsVersion: 5, parentBootstrap: join(out, 'lower.boot') });
    const lowerId = openImage(join(out, 'lower.boot')).blobs[0]!.blobId;
    const upperId = openImage(join(out, 'upper.boot')).blobs[0]!.blobId;
    await writeFile(join(out, `${lowerId}.boot`), await readFile(join(out, 'lower.boot')));
    await writeFile(join(out, `${upperId}.boot`), await readFile(join(out, 'upper.boot')));
    const r = await merge({ sources: [join(out, `${lowerId}.boot`), join(out, `${upperId}.boot`)], bootstrap: join(out, 'merged.boot') });
    expect(r.fsVersion).toBe('5');
    const paths = (boot: string) => {
      const image = openImage(boot);
      expect(image.version).toBe(5);
      return [...imageEntries(image.root)].map(([rel]) => rel.toString()).filter((p) => p !== '').sort();
    };
    expect(paths(join(out, 'merged.boot'))).toEqual(['d', 'd/keep', 'new', 'shared']);
    expect(paths(join(out, 'chained.boot'))).toEqual(['d', 'd/keep', 'new', 'shared']);
    // The upper layer's `new` equals the lower's `shared`: on the parent it is deduplicated.
    const chained = openImage(join(out, 'chained.boot'));
    expect(chained.blobs.map((b) => b.blobId)).toEqual([lowerId]);
    for (const boot of ['merged.boot', 'chained.boot']) {
      const tar = join(out, `${boot}.tar`);
      await unpack({ bootstrap: join(out, boot), blobDir: out, output: tar });
      const x = join(out, `${boot}.x`);
      await mkdir(x);
      await runOk('tar', ['-xf', tar, '-C', x]);
      expect(await readFile(join(x, 'new'))).toEqual(prng(21, 200_000));
      expect(await readFile(join(x, 'd', 'keep'), 'utf8')).toBe('keep');
    }
  });

  it('a v5 chunk dict: chunks it holds are referenced in its blob, not stored again; another digester is refused', async () => {
    const dictSrc = join(work, 'dict-src');
    const layer = join(work, 'dict-layer');
    await mkdir(dictSrc, { recursive: true });
    await mkdir(layer, { recursive: true });
    await writeFile(join(dictSrc, 'big'), prng(31, 300_000));
    await writeFile(join(layer, 'copy'), prng(31, 300_000));
    await writeFile(join(layer, 'own'), 'own data');
    const out = join(work, 'dict');
    await mkdir(out, { recursive: true });
    await create({ source: dictSrc, bootstrap: join(out, 'dict.boot'), blobDir: out, fsVersion: 5, chunkSize: 0x10000 });
    const dictId = openImage(join(out, 'dict.boot')).blobs[0]!.blobId;
    const r = await create({ source: layer, bootstrap: join(out, 'layer.boot'), blobDir: out, fsVersion: 5, chunkSize: 0x10000, chunkDict: `bootstrap=${join(out, 'dict.boot')}` });
    const image = openImage(join(out, 'layer.boot'));
    // Blob-table order is first use: `copy` (the dict's chunks) comes before `own`.
    expect(image.blobs.map((b) => b.blobId)).toEqual([dictId, r.blobs[1]]);
    expect(image.blobs[1]!.chunkCount).toBe(1);
    const copy = image.root.children!.find((n) => n.name.toString() === 'copy')!;
    expect(copy.chunks!.map((c) => c.blobIndex)).toEqual([0, 0, 0, 0, 0]);
    const tar = join(out, 'layer.tar');
    await unpack({ bootstrap: join(out, 'layer.boot'), blobDir: out, output: tar });
    const x = join(out, 'x');
    await mkdir(x);
    await runOk('tar', ['-xf', tar, '-C', x]);
    expect(await readFile(join(x, 'copy'))).toEqual(prng(31, 300_000));
    const e = await create({ source: layer, bootstrap: join(out, 'b3.boot'), blobDir: out, fsVersion: 5, chunkSize: 0x10000, digester: 'sha256', chunkDict: join(out, 'dict.boot') }).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/chunk dict uses digester blake3, the build uses sha256/);
  });

  it('the prefetch table holds the inode numbers (not offsets) of the listed paths', async () => {
    const dir = join(work, 'prefetch-src');
    await mkdir(join(dir, 'a'), { recursive: true });
    await writeFile(join(dir, 'a', 'f'), 'f');
    await writeFile(join(dir, 'z'), 'z');
    const out = join(work, 'prefetch');
    await mkdir(out, { recursive: true });
    await create({ source: dir, bootstrap: join(out, 'boot'), blobDir: out, fsVersion: 5, prefetch: ['/z', '/a/f'] });
    const image = openImage(join(out, 'boot'));
    const ino = (name: string, n = image.root) => n.children!.find((c) => c.name.toString() === name)!;
    // Numbering: / 1, a 2, z 3, a/f 4.
    expect([ino('z').ino, ino('f', ino('a')).ino]).toEqual([3, 4]);
    expect(image.prefetch).toEqual([3, 4]);
  });

  it('refuses, in one line, what RAFS v5 cannot carry or a v6 parent', async () => {
    const dir = join(work, 'refuse-src');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'f'), 'f');
    const out = join(work, 'refuse');
    await mkdir(out, { recursive: true });
    await create({ source: dir, bootstrap: join(out, 'v6.boot'), blobDir: out });
    const cases: Array<[Parameters<typeof create>[0], RegExp]> = [
      [{ source: dir, bootstrap: join(out, 'b'), blobDir: out, fsVersion: 5, blobToc: true }, /blob-toc.*--fs-version 5/],
      [{ source: dir, bootstrap: join(out, 'b'), blobCacheDir: out, fsVersion: 5 }, /--blob-cache-dir is not supported with --fs-version 5/],
      [{ source: dir, bootstrap: join(out, 'b'), blobDir: out, fsVersion: 5, parentBootstrap: join(out, 'v6.boot') }, /parent bootstrap is RAFS v6, the build makes RAFS v5/],
      [{ source: dir, bootstrap: join(out, 'b'), blobDir: out, fsVersion: 5, chunkDict: join(out, 'v6.boot') }, /chunk dict is RAFS v6, the build makes RAFS v5/],
    ];
    for (const [o, why] of cases) {
      const e = await create(o).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(NydusError);
      expect((e as Error).message).toMatch(why);
      expect((e as Error).message).not.toContain('\n');
    }
  });
});
