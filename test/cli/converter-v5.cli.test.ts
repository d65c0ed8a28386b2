// The nydus-snapshotter converter's flows with --fs-version 5 (upstream's TestPack and TestUnpack
// run v5 first; acceld users set fs_version=5), driven with its exact argv (tar-merge-export.md
// §9): each layer tar packed through two FIFOs (v5: --blob-inline-meta without blob-toc, so the
// blob has no TOC and image.boot is found by walking the section headers backwards, as the
// converter's fallback does); each layer unpacked as its Unpack does (image.boot and image.blob
// taken out of the blob, W/oci.tar a FIFO) and compared with the layer; the layers merged with
// stdin "/"; the merged image unpacked and extracted by GNU tar, compared with umoci's rootfs of
// the same layers; the layers chained with --parent-bootstrap give the same tree.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { lstat, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compareTrees } from '../helpers/compare.js';
import { skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { umociMissing } from '../helpers/oci.js';
import { hasTool, run, runOk } from '../helpers/tools.js';
import * as v5 from '../../src/format/rafs/v5.js';
import { extractInlineBootstrap, openImage } from '../../src/read/open.js';
import { BIN, nydusImageOk, REPO } from './cli-runner.js';
import { chainLikeMerge, converterFixture, exited, extractLike, kill, sectionsByWalk, unpackDiff, type Packed } from './converter-flow.js';

let work = '';
let skipWhy: string | undefined;
const layerDirs: string[] = [];
const tars: string[] = [];
let rootfs = '';
let W = '';
let BLOBS = '';
const hexes: string[] = [];
const packs: Packed[] = [];

/** A section of the blob, found by walking the headers backwards from the end. */
function section(blob: Buffer, name: string): Buffer {
  const s = sectionsByWalk(blob).find((x) => x.name === name);
  if (!s) throw new Error(`no ${name} section`);
  return blob.subarray(s.start, s.start + s.size);
}

beforeAll(async () => {
  skipWhy = umociMissing() ?? (['tar', 'dd', 'mkfifo'].find((t) => !hasTool(t)) && 'tar, dd or mkfifo is missing');
  if (skipWhy) return;
  const f = await converterFixture('nydus-converter-v5-', '5', (blob) => section(blob, 'image.boot'));
  ({ work, W, BLOBS, rootfs } = f);
  layerDirs.push(...f.layerDirs);
  tars.push(...f.tars);
  hexes.push(...f.hexes);
  packs.push(...f.packs);
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function need(ctx: SkipContext): void {
  if (skipWhy) skipLoudly(ctx, skipWhy);
}

const MERGE_JSON = () => join(W, 'merge-output.json');
const MERGED = () => join(W, 'bootstrap');

describe('the converter with --fs-version 5: pack, unpack each layer, merge', () => {
  it('packs each layer through two FIFOs silently; the blob is chunks, image.blob, image.boot (RAFS v5), no TOC', (ctx) => {
    need(ctx);
    expect(packs).toHaveLength(3);
    for (const [i, p] of packs.entries()) {
      expect(p.result.stdout.toString()).toBe('');
      expect(p.result.stderr.toString()).toBe('');
      expect(p.leftovers).toEqual([]);
      const walked = sectionsByWalk(p.blob);
      expect(walked.map((s) => s.name)).toEqual(['image.boot', 'image.blob']);
      expect(walked[1]!.start).toBe(0);
      const boot = section(p.blob, 'image.boot');
      expect(boot.readUInt32LE(0)).toBe(v5.MAGIC);
      expect(boot.readUInt32LE(4)).toBe(v5.VERSION_V5);
      expect(extractInlineBootstrap(join(BLOBS, hexes[i]!))!.equals(boot)).toBe(true);
      // The layer's bootstrap cannot know its own blob's id (blob.md §5.3).
      const sb = v5.decodeSuperBlock(boot, 0);
      expect(v5.decodeBlobTable(boot, sb.s_blob_table_offset, sb.s_blob_table_size).map((b) => b.blob_id)).toEqual(['x'.repeat(64)]);
    }
    expect(new Set(hexes).size).toBe(3);
  });

  it('Unpack: each layer\'s image.boot and image.blob, unpacked into a FIFO, extract to the layer itself (markers kept)', async (ctx) => {
    need(ctx);
    for (const [i, p] of packs.entries()) {
      const uw = join(work, `unpack${i}`);
      await mkdir(uw);
      await writeFile(join(uw, 'image.boot'), section(p.blob, 'image.boot'));
      await writeFile(join(uw, 'image.blob'), section(p.blob, 'image.blob'));
      const fifo = join(uw, 'oci.tar');
      await runOk('mkfifo', [fifo]);
      const drained = join(work, `layer${i}-unpacked.tar`);
      const reader = spawn('dd', [`if=${fifo}`, `of=${drained}`, 'bs=64k', 'status=none'], { stdio: 'ignore' });
      try {
        const argv = ['unpack', '--log-level', 'warn', '--bootstrap', join(uw, 'image.boot'), '--output', fifo, '--blob', join(uw, 'image.blob')];
        const r = await run(process.execPath, [BIN, ...argv], { cwd: REPO, timeoutMs: 300_000 });
        expect(r.code, r.stderr.toString()).toBe(0);
        expect(r.stderr.toString()).toBe('');
        expect(await exited(reader, 'the FIFO reader')).toBe(0);
        expect((await lstat(fifo)).isFIFO()).toBe(true);
      } finally {
        kill(reader);
      }
      const x = join(work, `layer${i}-x`);
      await extractLike(drained, x, layerDirs[i]!);
      expect(await compareTrees(layerDirs[i]!, x, { ignoreRootMtime: true })).toEqual([]);
    }
  });

  it('merges the v5 layers with the exact argv and stdin "/" into a RAFS v5 bootstrap naming the layers\' blobs', async (ctx) => {
    need(ctx);
    const argv = [
      'merge', '--log-level', 'warn', '--prefetch-policy', 'fs', '--output-json', MERGE_JSON(), '--bootstrap', MERGED(),
      ...hexes.map((h) => join(W, h)),
    ];
    const r = await run(process.execPath, [BIN, ...argv], { cwd: REPO, input: '/', timeoutMs: 300_000 });
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('');
    const out = JSON.parse(await readFile(MERGE_JSON(), 'utf8')) as { blobs: string[]; fs_version: string };
    // First-use order, as for v6: `changing` (layer 2), `owned` (layer 0), then bin/other (layer 1).
    expect(out.blobs).toEqual([hexes[2], hexes[0], hexes[1]]);
    expect(out.fs_version).toBe('5');
    const image = openImage(MERGED());
    expect(image.version).toBe(5);
    expect(image.blobs.map((b) => b.blobId)).toEqual(out.blobs);
    // The prefetch table lists the root's inode number ("/" on stdin).
    expect(image.prefetch).toEqual([1]);
  });

  it('unpack --blob-dir BLOBS of the merged v5 image, extracted by GNU tar as root, equals the umoci rootfs', async (ctx) => {
    need(ctx);
    expect(await unpackDiff(work, MERGED(), BLOBS, rootfs)).toEqual([]);
  });

  it('the same layers chained with --parent-bootstrap as v5 give the same tree as the merge; check and inspect read it', async (ctx) => {
    need(ctx);
    const { boot, dir: P, own } = await chainLikeMerge(work, tars, MERGED(), BLOBS, ['--fs-version', '5']);
    expect(openImage(boot).version).toBe(5);
    const check = await nydusImageOk(['check', '-B', boot, '-D', P]);
    expect(check.stdout.toString()).toContain('RAFS filesystem metadata is valid');
    const blobs = JSON.parse((await nydusImageOk(['inspect', boot, '-R', 'blobs'])).stdout.toString()) as Array<{ blob_id: string }>;
    expect(blobs.map((bl) => bl.blob_id)).toEqual(own);
    // A block disk needs v6's device table: export --block refuses v5 in one line, writing nothing.
    const disk = join(work, 'v5.disk');
    const e = await run(process.execPath, [BIN, 'export', '--block', '-B', boot, '-D', P, '-O', disk], { cwd: REPO });
    expect(e.code).toBe(1);
    expect(e.stderr.toString().trimEnd().split('\n')).toEqual([expect.stringMatching(/^Error: .*not a RAFS v6 bootstrap/)]);
    await expect(stat(disk)).rejects.toThrow();
  });
});
