// The nydus-snapshotter converter's flows with the two builder options it passes through when
// asked (tar-merge-export.md §9): `--batch-size` (when BatchSize is not "" or "0") and
// `--encrypt`. Feature detection reads `create -h`; each of two layers with whiteouts is packed
// through FIFOs with the exact argv, image.boot taken out through the TOC, the layers merged with
// stdin "/", and the result unpacked and compared with umoci's rootfs (the layers applied with
// the overlay rules); each layer is also unpacked as the converter's Unpack does (image.boot and
// image.blob only). With --encrypt the converter marks each blob layer
// `containerd.io/snapshot/nydus-encrypted-blob: "true"`: the merged bootstrap must name exactly
// those blobs, each with its own key. Batch layers are also mounted by the kernel through
// --blob-cache-dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareTrees } from '../helpers/compare.js';
import { kernelSupport, skipLoudly, withMountedImage, type SkipContext } from '../helpers/kernel.js';
import { buildLayerDir, sha256Hex, tarLayer, umociMissing, umociUnpack, writeOciLayout, type LayerEntry } from '../helpers/oci.js';
import { hasTool, runOk } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';
import { converterMerge, converterPack, converterUnpack, tocEntry } from '../helpers/converter.js';
import { loggedBlobId, nydusImage, nydusImageOk } from './cli-runner.js';
import { openImage } from '../../src/read/open.js';
import { CHUNK_BATCH } from '../../src/read/model.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';

const T0 = 1_600_000_000;
const T1 = 1_650_000_000;
const SECRET = 'converter secret: this line must never be readable in an encrypted blob';

function smallFiles(dir: string, n: number, seed: number, mtime: number): LayerEntry[] {
  const out: LayerEntry[] = [{ kind: 'dir', path: dir, mtime }];
  for (let i = 0; i < n; i++) {
    const size = 1 + ((seed + i) * 2654435761) % 9000;
    out.push({ kind: 'file', path: `${dir}/s${i}`, data: i % 2 === 0 ? prng(seed + i, size) : `${SECRET} #${i}\n`.repeat(1 + (size % 40)), mtime });
  }
  return out;
}

const LAYERS: LayerEntry[][] = [
  [
    { kind: 'dir', path: '.', mtime: T0 },
    { kind: 'dir', path: 'bin', mtime: T0 },
    { kind: 'file', path: 'bin/tool', data: prng(1, 2 * 1024 * 1024 + 77), mode: 0o755, mtime: T0 },
    { kind: 'symlink', path: 'bin/sh', target: 'tool', mtime: T0 },
    ...smallFiles('small', 300, 10, T0),
    { kind: 'file', path: 'gone', data: 'gone0\n', mtime: T0 },
    { kind: 'dir', path: 'gonedir', mtime: T0 },
    { kind: 'file', path: 'gonedir/x', data: 'x0', mtime: T0 },
    { kind: 'dir', path: 'data', mtime: T0, xattrs: { 'user.layer': '0' } },
    { kind: 'file', path: 'data/a', data: 'a0\n', mtime: T0 },
    { kind: 'file', path: 'data/secret', data: `${SECRET}\n`.repeat(100), uid: 7, gid: 8, mode: 0o640, mtime: T0 },
    { kind: 'hardlink', path: 'data/secret-link', to: 'data/secret' },
    { kind: 'file', path: 'changing', data: 'v0\n', mtime: T0 },
  ],
  [
    { kind: 'dir', path: '.', mtime: T1 },
    { kind: 'file', path: '.wh.gone', data: '', mtime: T1 },
    { kind: 'file', path: '.wh.gonedir', data: '', mtime: T1 },
    { kind: 'file', path: 'changing', data: 'v1 changed\n', mode: 0o600, mtime: T1 },
    { kind: 'dir', path: 'data', mode: 0o750, mtime: T1 },
    { kind: 'file', path: 'data/.wh..wh..opq', data: '', mtime: T1 },
    { kind: 'file', path: 'data/new', data: 'new1\n', mtime: T1 },
    ...smallFiles('more', 150, 20, T1),
  ],
];

const VARIANTS: Record<string, string[]> = {
  batch: ['--batch-size', '0x100000'],
  encrypt: ['--encrypt'],
  'batch+encrypt': ['--batch-size', '0x100000', '--encrypt'],
};

let work = '';
let skipWhy: string | undefined;
let rootfs = '';
const tars: string[] = [];
const layerDirs: string[] = [];

beforeAll(async () => {
  skipWhy = umociMissing() ?? (['tar', 'dd', 'mkfifo'].find((t) => !hasTool(t)) && 'tar, dd or mkfifo is missing');
  if (skipWhy) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-conv-batch-enc-'));
  const data: Buffer[] = [];
  for (const [i, entries] of LAYERS.entries()) {
    layerDirs.push(join(work, `layer${i}`));
    await buildLayerDir(layerDirs[i]!, entries);
    tars.push(join(work, `layer${i}.tar`));
    data.push(await tarLayer(layerDirs[i]!, tars[i]!));
  }
  await writeOciLayout(join(work, 'oci'), 'v1', data.map((d) => ({ data: d })));
  rootfs = await umociUnpack(join(work, 'oci'), 'v1', join(work, 'bundle'));
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function need(ctx: SkipContext): void {
  if (skipWhy) skipLoudly(ctx, skipWhy);
}

/** GNU tar extracts `tar` as root into a new `dir` that takes `like`'s root mode and owner (unpack writes no root entry). */
async function extractLike(tar: string, dir: string, like: string): Promise<void> {
  await mkdir(dir);
  await runOk('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-owner', '-p', '-C', dir, '-xf', tar]);
  const ref = await stat(like);
  await chown(dir, ref.uid, ref.gid);
  await chmod(dir, ref.mode & 0o7777);
}

it('create -h shows what the converter\'s feature detection looks for (stdout only, exit 0)', async () => {
  const r = await nydusImage(['create', '-h']);
  expect(r.code).toBe(0);
  // tool/feature.go: a feature is present when the help holds the whole string.
  for (const s of ['--type', 'tar-rafs', '--batch-size', '--encrypt']) expect(r.stdout.toString()).toContain(s);
});

for (const [name, extra] of Object.entries(VARIANTS)) {
  const batch = extra.includes('--batch-size');
  const encrypt = extra.includes('--encrypt');
  describe(`the converter with ${extra.join(' ')}`, () => {
    const W = () => join(work, name, 'W');
    const BLOBS = () => join(work, name, 'BLOBS');
    const hexes: string[] = [];
    const blobs: Buffer[] = [];
    beforeAll(async () => {
      if (skipWhy) return;
      await mkdir(W(), { recursive: true });
      await mkdir(BLOBS());
      for (const tar of tars) {
        const pw = join(work, name, `pack${hexes.length}`);
        await mkdir(pw);
        const { blob, result } = await converterPack(pw, tar, { extra });
        expect(result.stdout.toString() + result.stderr.toString()).toBe('');
        expect(await readdir(pw)).toEqual([]);
        const hex = sha256Hex(blob);
        hexes.push(hex);
        blobs.push(blob);
        await writeFile(join(BLOBS(), hex), blob);
        await writeFile(join(W(), hex), tocEntry(blob, 'image.boot')!);
      }
    }, 300_000);

    it('packs each layer as asked: batch chunks, or an encrypted blob holding no plaintext of a known file', (ctx) => {
      need(ctx);
      for (const [i, hex] of hexes.entries()) {
        const img = openImage(join(W(), hex));
        const b = img.blobs[0]!;
        expect((b.features & bt.FEATURE_BATCH) !== 0).toBe(batch);
        expect((b.features & bt.FEATURE_ENCRYPTED) !== 0).toBe(encrypt);
        if (batch) expect(img.chunkTable.filter((c) => (c.flags & CHUNK_BATCH) !== 0).length).toBeGreaterThan(100);
        // The chunk data (image.blob) holds the secret lines in plain only when not encrypted.
        const data = tocEntry(blobs[i]!, 'image.blob')!;
        const compressedAway = batch && !encrypt;
        if (encrypt) expect(data.indexOf(SECRET)).toBe(-1);
        else if (!compressedAway) expect(data.indexOf(SECRET)).toBeGreaterThanOrEqual(0);
      }
    });

    it('merges with the exact argv and stdin "/"; every blob the converter marks nydus-encrypted-blob is encrypted in the merged bootstrap', async (ctx) => {
      need(ctx);
      const r = await converterMerge(W(), hexes.map((h) => join(W(), h)));
      expect(r.code, r.stderr.toString()).toBe(0);
      const out = JSON.parse(await readFile(join(W(), 'merge-output.json'), 'utf8')) as { blobs: string[] };
      // First-use order (tar-merge-export.md §4.2): the root's own file `changing` is layer 1's.
      expect(out.blobs).toEqual([hexes[1], hexes[0]]);
      // convert_unix.go Merge: one descriptor per merge-output blob, marked when encrypting.
      const descriptors = out.blobs.map((hex) => ({
        digest: `sha256:${hex}`,
        annotations: { 'containerd.io/uncompressed': `sha256:${hex}`, 'containerd.io/snapshot/nydus-blob': 'true', ...(encrypt ? { 'containerd.io/snapshot/nydus-encrypted-blob': 'true' } : {}) },
      }));
      const merged = openImage(join(W(), 'bootstrap'));
      expect(merged.blobs.map((b) => `sha256:${b.blobId}`)).toEqual(descriptors.map((d) => d.digest));
      for (const [i, d] of descriptors.entries()) {
        const marked = (d.annotations as Record<string, string>)['containerd.io/snapshot/nydus-encrypted-blob'] === 'true';
        expect((merged.blobs[i]!.features & bt.FEATURE_ENCRYPTED) !== 0).toBe(marked);
        expect(merged.blobs[i]!.cipherAlgo ?? 0).toBe(marked ? 1 : 0);
      }
      if (encrypt) expect(merged.blobs[0]!.metaDigest.equals(merged.blobs[1]!.metaDigest)).toBe(false);
      expect((merged.flags & ext.FLAG_ENCRYPTION_AES128XTS) !== 0).toBe(encrypt);
    });

    it('unpack of the merged bootstrap with --blob-dir, extracted by GNU tar, equals the umoci rootfs', async (ctx) => {
      need(ctx);
      const tar = join(work, name, 'merged.tar');
      await nydusImageOk(['unpack', '--bootstrap', join(W(), 'bootstrap'), '--blob-dir', BLOBS(), '--output', tar]);
      const x = join(work, name, 'merged-x');
      await extractLike(tar, x, rootfs);
      expect(await compareTrees(rootfs, x, { ignoreRootMtime: true })).toEqual([]);
    });

    it('the converter\'s Unpack of each layer (image.boot and image.blob through a FIFO) gives the layer back, whiteouts included', async (ctx) => {
      need(ctx);
      for (const [i, blob] of blobs.entries()) {
        const uw = join(work, name, `unpack${i}`);
        await mkdir(uw);
        await writeFile(join(uw, 'image.boot'), tocEntry(blob, 'image.boot')!);
        await writeFile(join(uw, 'image.blob'), tocEntry(blob, 'image.blob')!);
        const tar = join(work, name, `layer${i}.out.tar`);
        const r = await converterUnpack(uw, tar);
        expect(r.code, r.stderr.toString()).toBe(0);
        const x = join(work, name, `layer${i}-x`);
        await extractLike(tar, x, layerDirs[i]!);
        expect(await compareTrees(layerDirs[i]!, x, { ignoreRootMtime: true })).toEqual([]);
      }
    });
  });
}

describe('batch layers through --blob-cache-dir, merged and mounted by the kernel', () => {
  it('the merged bootstrap over the layers\' .blob.data devices shows the umoci rootfs', async (ctx) => {
    need(ctx);
    const k = kernelSupport();
    if (!k.ok) skipLoudly(ctx, k.why!);
    const dir = join(work, 'cache');
    await mkdir(dir);
    const boots: string[] = [];
    await mkdir(join(work, 'cache-boots'));
    for (const tar of tars) {
      const tmp = join(work, 'cache-boot-tmp');
      const r = await nydusImageOk(['create', '-t', 'tar-rafs', '-B', tmp, '--blob-cache-dir', dir, '--batch-size', '0x100000', tar]);
      expect(openImage(tmp).chunkTable.some((c) => (c.flags & CHUNK_BATCH) !== 0)).toBe(true);
      // merge takes a layer's blob id from its bootstrap's file name (tar-merge-export.md §4.3).
      boots.push(join(work, 'cache-boots', loggedBlobId(r.stderr)));
      await rename(tmp, boots[boots.length - 1]!);
    }
    const merged = join(work, 'cache-merged');
    await nydusImageOk(['merge', '--bootstrap', merged, ...boots]);
    // Devices go in the merged blob table's order (first use), not the layers'.
    const ids = openImage(merged).blobs.map((b) => b.blobId);
    expect([...ids].sort()).toEqual(boots.map((b) => b.slice(b.lastIndexOf('/') + 1)).sort());
    const ordered = ids.map((id) => join(dir, `${id}.blob.data`));
    const diffs = await withMountedImage(merged, ordered, (mnt) => compareTrees(rootfs, mnt, { ignoreRootMtime: true }));
    expect(diffs).toEqual([]);
  });
});
