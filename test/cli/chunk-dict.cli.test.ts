// --chunk-dict from outside (tar-merge-export.md §5): a layer repeating a dict's content stores
// almost nothing of its own, the dict's blob joins the blob table at its first hit, the image
// still reads back equal with both blobs at hand; and the converter's merge with --chunk-dict
// keeps the dict blob when used and drops it when not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareTrees } from '../helpers/compare.js';
import { tarLayer } from '../helpers/oci.js';
import { runOk } from '../helpers/tools.js';
import { prng, writeSourceDir } from '../helpers/tree.js';
import { extractInlineBootstrap, openImage } from '../../src/read/open.js';
import { readBackAndCompare } from '../builder/read-back.js';
import { loggedBlobIds, nydusImage, nydusImageOk } from './cli-runner.js';

const MiB = 1024 * 1024;
const T = 1_600_000_000;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let work = '';
let dictBoot = '';
let dictId = '';
/** Source dirs and their tars. */
let layerSrc = '';
let layerTar = '';
let otherTar = '';

const makeSource = (dir: string, files: Record<string, Buffer | string>): Promise<void> => writeSourceDir(dir, files, T);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-chunk-dict-cli-'));
  const big1 = prng(11, 6 * MiB);
  const big2 = prng(12, 3 * MiB + 5);
  await makeSource(join(work, 'dict-src'), { 'lib/big1': big1, 'lib/big2': big2 });
  await tarLayer(join(work, 'dict-src'), join(work, 'dict.tar'));
  // The layer: the dict's files under other names, a file sharing three whole chunks with big1,
  // and a little of its own. "a/…" sorts first, so the first chunk met is a dict hit.
  layerSrc = join(work, 'layer-src');
  await makeSource(layerSrc, {
    'a/copy1': big1,
    'b/copy2': big2,
    'c/mixed': Buffer.concat([big1.subarray(0, 3 * MiB), prng(13, 256 * 1024)]),
    'd/new.txt': 'only in the layer\n',
  });
  layerTar = join(work, 'layer.tar');
  await tarLayer(layerSrc, layerTar);
  await makeSource(join(work, 'other-src'), { 'unrelated.bin': prng(14, 2 * MiB) });
  otherTar = join(work, 'other.tar');
  await tarLayer(join(work, 'other-src'), otherTar);

  const d = join(work, 'dict');
  await mkdir(d);
  dictBoot = join(d, 'boot');
  const r = await nydusImageOk(['create', '-t', 'tar-rafs', '-B', dictBoot, '-D', d, join(work, 'dict.tar')]);
  [dictId] = loggedBlobIds(r.stderr);
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The one file in dir named like a blob id. */
async function blobFile(dir: string): Promise<{ id: string; size: number }> {
  const ids = (await readdir(dir)).filter((n) => /^[0-9a-f]{64}$/.test(n));
  expect(ids).toHaveLength(1);
  return { id: ids[0]!, size: (await stat(join(dir, ids[0]!))).size };
}

/** unpack → GNU tar → compared with the layer's source dir (contents and metadata). */
async function unpackEquals(boot: string, blobDir: string, label: string): Promise<void> {
  const outTar = join(work, `${label}.tar`);
  await nydusImageOk(['unpack', '--bootstrap', boot, '--blob-dir', blobDir, '--output', outTar]);
  const x = join(work, `${label}-x`);
  await mkdir(x);
  await runOk('tar', ['--numeric-owner', '-p', '-C', x, '-xf', outTar]);
  await chmod(x, 0o755);
  expect(await compareTrees(layerSrc, x, { ignoreRootMtime: true })).toEqual([]);
}

describe('create --chunk-dict bootstrap=DICT', () => {
  it('writes a data blob at least 90% smaller, adds the dict blob at its first hit, and reads back equal', async () => {
    const withDict = join(work, 'with');
    const without = join(work, 'without');
    await mkdir(withDict);
    await mkdir(without);
    const a = await nydusImageOk(['create', '-t', 'tar-rafs', '-B', join(withDict, 'boot'), '-D', withDict, '--chunk-dict', `bootstrap=${dictBoot}`, layerTar]);
    await nydusImageOk(['create', '-t', 'tar-rafs', '-B', join(without, 'boot'), '-D', without, layerTar]);
    const own = await blobFile(withDict);
    const plain = await blobFile(without);
    // Without the dict, c/mixed's first three chunks still dedup against a/copy1 inside the layer.
    expect(plain.size).toBeGreaterThan(9 * MiB);
    expect(own.size).toBeLessThanOrEqual(plain.size / 10);

    // The dict blob is hit first (a/copy1's first chunk), so it takes index 0 (spec §5).
    expect(loggedBlobIds(a.stderr)).toEqual([dictId, own.id]);
    const j = join(withDict, 'check.json');
    await nydusImageOk(['check', '-J', j, join(withDict, 'boot')]);
    expect((JSON.parse(await readFile(j, 'utf8')) as { blobs: string[] }).blobs).toEqual([dictId, own.id]);
    const inspected = await nydusImageOk(['inspect', '-R', 'blobs', join(withDict, 'boot')]);
    const blobs = JSON.parse(inspected.stdout.toString()) as Array<{ blob_id: string; compressed_size: number }>;
    expect(blobs.map((b) => b.blob_id)).toEqual([dictId, own.id]);
    expect(blobs[0]!.compressed_size).toBe((await stat(join(work, 'dict', dictId))).size);

    // Both blobs in one directory: every chunk read back, digest-checked, equal to the source.
    const both = join(work, 'both');
    await mkdir(both);
    await copyFile(join(work, 'dict', dictId), join(both, dictId));
    await copyFile(join(withDict, own.id), join(both, own.id));
    const image = openImage(join(withDict, 'boot'));
    const rb = readBackAndCompare(image, { blobDir: both }, layerSrc);
    expect(rb.mismatches).toEqual([]);
    expect(rb.files).toBe(4);
    // Without the dict's blob the image cannot be read: the data really lives there.
    const missing = await nydusImage(['check', '-B', join(withDict, 'boot'), '-D', withDict]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.toString()).toContain(dictId);
    await unpackEquals(join(withDict, 'boot'), both, 'create-dict');
  });

  it('leaves a dict blob that is never hit out of the table', async () => {
    const out = join(work, 'unrelated');
    await mkdir(out);
    const r = await nydusImageOk(['create', '-t', 'tar-rafs', '-B', join(out, 'boot'), '-D', out, '--chunk-dict', `bootstrap=${dictBoot}`, otherTar]);
    const own = await blobFile(out);
    expect(loggedBlobIds(r.stderr)).toEqual([own.id]);
    expect(openImage(join(out, 'boot')).blobs.map((b) => b.blobId)).toEqual([own.id]);
  });

  it('refuses a dict built with another chunk size, in one line', async () => {
    const out = join(work, 'mismatch');
    await mkdir(out);
    const r = await nydusImage(['create', '-t', 'tar-rafs', '--chunk-size', '0x200000', '-B', join(out, 'boot'), '-D', out, '--chunk-dict', `bootstrap=${dictBoot}`, layerTar]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.toString().trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr.toString()).toMatch(/chunk.size/i);
    expect(await readdir(out)).toEqual([]);
  });
});

describe('the converter with a chunk dict: pack --chunk-dict, then merge --chunk-dict', () => {
  /** The converter's pack argv with the dict (spec §9); returns the layer's hex and its W/<hex>. */
  async function pack(tar: string, name: string, blobs: string): Promise<{ hex: string; boot: string }> {
    const W = join(work, name);
    await mkdir(W);
    await copyFile(tar, join(W, 'blob.targz'));
    await nydusImageOk(
      [
        'create', '--log-level', 'warn', '--prefetch-policy', 'fs', '--blob', join(W, 'blob.rafs'), '--whiteout-spec', 'none',
        '--fs-version', '6', '--type', 'tar-rafs', '--blob-inline-meta', '--features', 'blob-toc',
        '--chunk-dict', `bootstrap=${dictBoot}`, join(W, 'blob.targz'),
      ],
      { input: '' },
    );
    const blob = await readFile(join(W, 'blob.rafs'));
    const hex = sha256(blob);
    await writeFile(join(blobs, hex), blob);
    const boot = join(W, hex);
    await writeFile(boot, extractInlineBootstrap(join(W, 'blob.rafs'))!);
    return { hex, boot };
  }

  async function merge(name: string, sources: string[]): Promise<{ boot: string; blobs: string[] }> {
    const W = join(work, name);
    await mkdir(W);
    const json = join(W, 'merge-output.json');
    const boot = join(W, 'bootstrap');
    const r = await nydusImageOk(
      ['merge', '--log-level', 'warn', '--prefetch-policy', 'fs', '--output-json', json, '--bootstrap', boot, '--chunk-dict', `bootstrap=${dictBoot}`, ...sources],
      { input: '/' },
    );
    expect(r.stderr.toString()).toBe('');
    return { boot, blobs: (JSON.parse(await readFile(json, 'utf8')) as { blobs: string[] }).blobs };
  }

  it('keeps the dict blob the layer uses: JSON and blob table name it, unpack reads back equal', async () => {
    const BLOBS = join(work, 'conv-blobs');
    await mkdir(BLOBS);
    await copyFile(join(work, 'dict', dictId), join(BLOBS, dictId));
    const layer = await pack(layerTar, 'conv-pack', BLOBS);
    expect((await stat(join(BLOBS, layer.hex))).size).toBeLessThan(MiB);
    const m = await merge('conv-merge', [layer.boot]);
    expect([...m.blobs].sort()).toEqual([dictId, layer.hex].sort());
    const image = openImage(m.boot);
    expect(image.blobs.map((b) => b.blobId)).toEqual(m.blobs);
    const rb = readBackAndCompare(image, { blobDir: BLOBS }, layerSrc);
    expect(rb.mismatches).toEqual([]);
    await unpackEquals(m.boot, BLOBS, 'merge-dict');
  });

  it('drops a dict blob no source uses', async () => {
    const BLOBS = join(work, 'conv-blobs-unused');
    await mkdir(BLOBS);
    const other = await pack(otherTar, 'conv-pack-other', BLOBS);
    const m = await merge('conv-merge-other', [other.boot]);
    expect(m.blobs).toEqual([other.hex]);
    expect(openImage(m.boot).blobs.map((b) => b.blobId)).toEqual([other.hex]);
  });
});
