// `nydus-image compact` (issue 17 part 4): an image of 40 small layers, each built on the one
// below with a chunk dict, whose upper layers delete and replace what lower ones stored. Compact
// drops the blobs nothing uses, rebuilds the barely used ones and merges the small ones: fewer
// blobs and fewer bytes (printed), the chunk dict's blob kept, every chunk still verified by
// check, and unpack before and after giving the same tar byte for byte. Bad config fields give
// one line each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openImage } from '../../src/read/open.js';
import { buildCompactChain } from '../helpers/compact-chain.js';
import { nydusImage, nydusImageOk } from '../cli/cli-runner.js';

const LAYERS = 40;
let work = '';
let blobs = '';
let dictBoot = '';
let top = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-compact-'));
  blobs = join(work, 'blobs');
  await mkdir(blobs);
  ({ dictBoot, top } = await buildCompactChain({ work, blobDir: blobs, bootDir: work, layers: LAYERS }));
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function totalSize(ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await stat(join(blobs, id))).size;
  return n;
}

describe('compact', () => {
  it('compacts 40 layers built with a chunk dict into fewer, smaller blobs; unpack before and after is the same tar', async () => {
    const beforeIds = openImage(top).blobs.map((b) => b.blobId);
    const dictId = openImage(dictBoot).blobs[0]!.blobId;
    expect(beforeIds).toContain(dictId);
    expect(beforeIds.length).toBe(LAYERS + 1);
    const cfg = join(work, 'compact.json');
    await writeFile(cfg, JSON.stringify({ min_used_ratio: 60, compact_blob_size: 10 << 20, max_compact_size: 100 << 20, layers_to_compact: 2, blobs_dir: blobs }));
    const out = join(work, 'compacted.boot');
    const json = join(work, 'compact-output.json');
    await nydusImageOk(['compact', '--bootstrap', top, '--config', cfg, '--chunk-dict', `bootstrap=${dictBoot}`, '--output-bootstrap', out, '--output-json', json]);
    const after = openImage(out);
    const afterIds = after.blobs.map((b) => b.blobId);
    const [beforeBytes, afterBytes] = [await totalSize(beforeIds), await totalSize(afterIds)];
    process.stderr.write(`compact of ${LAYERS} layers + dict: blobs ${beforeIds.length} -> ${afterIds.length}, bytes ${beforeBytes} -> ${afterBytes}\n`);
    expect(afterIds.length).toBeLessThan(beforeIds.length / 4);
    expect(afterBytes).toBeLessThan(beforeBytes);
    expect(afterIds).toContain(dictId);
    const j = JSON.parse(await readFile(json, 'utf8')) as { bootstrap: string; blobs: string[]; fs_version: string };
    expect(j.bootstrap).toBe(out);
    expect(j.blobs).toEqual(afterIds);
    expect(j.fs_version).toBe('6');

    const r = await nydusImageOk(['check', '-B', out, '-D', blobs]);
    expect(r.code).toBe(0);
    const tars: Buffer[] = [];
    for (const [boot, name] of [[top, 'before'], [out, 'after']] as const) {
      const tar = join(work, `${name}.tar`);
      await nydusImageOk(['unpack', '--bootstrap', boot, '--blob-dir', blobs, '--output', tar]);
      tars.push(await readFile(tar));
    }
    expect(tars[1]!.length).toBeGreaterThan(LAYERS * 40_000);
    expect(tars[1]!.equals(tars[0]!)).toBe(true);
  });

  it("the seed's create-time spelling (create --bootstrap B --chunk-dict D --config compact.json --backend-* DIR) compacts B as compact does", async () => {
    const copy = join(work, 'seed.boot');
    await writeFile(copy, await readFile(top));
    const cfg = join(work, 'seed-compact.json');
    await writeFile(cfg, JSON.stringify({ min_used_ratio: 60, compact_blob_size: 10 << 20, max_compact_size: 100 << 20, layers_to_compact: 2, blobs_dir: blobs }));
    const backendCfg = join(work, 'backend-config.json');
    await writeFile(backendCfg, JSON.stringify({ endpoint: 'region.aliyuncs.com', scheme: 'https', access_key_id: '', access_key_secret: '', bucket_name: 'b', object_prefix: 'nydus/' }));
    const lower = join(work, 'lower');
    await mkdir(lower, { recursive: true });
    const r = await nydusImageOk(['create', '--bootstrap', copy, '--chunk-dict', `bootstrap=${dictBoot}`, '--config', cfg, '--backend-config-file', backendCfg, '--backend-type', 'oss', lower]);
    expect(r.stderr.toString()).toMatch(/is a compact config: compacting/);
    const out = join(work, 'seed.bootstrap.compact');
    const before = openImage(top).blobs.length;
    expect(openImage(out).blobs.length).toBeLessThan(before / 4);
    // The input is untouched; the compacted image reads back as the original does.
    expect((await readFile(copy)).equals(await readFile(top))).toBe(true);
    const tars: Buffer[] = [];
    for (const [boot, name] of [[top, 'seed-before'], [out, 'seed-after']] as const) {
      const tar = join(work, `${name}.tar`);
      await nydusImageOk(['unpack', '--bootstrap', boot, '--blob-dir', blobs, '--output', tar]);
      tars.push(await readFile(tar));
    }
    expect(tars[1]!.equals(tars[0]!)).toBe(true);
  });

  it('the flag spelling (-D and --min-used-ratio ...) works too; the default output is <name>.bootstrap.compact', async () => {
    const copy = join(work, 'top.boot');
    await writeFile(copy, await readFile(top));
    await nydusImageOk(['compact', '-B', copy, '-D', blobs, '--min-used-ratio', '50', '--compact-blob-size', String(1 << 20), '--max-compact-size', String(4 << 20)]);
    const out = join(work, 'top.bootstrap.compact');
    expect(openImage(out).blobs.length).toBeLessThan(LAYERS);
  });

  it('layers_to_compact above the blob count writes nothing', async () => {
    const out = join(work, 'never.boot');
    const r = await nydusImageOk(['compact', '-B', top, '-D', blobs, '--layers-to-compact', '100', '-O', out]);
    expect(r.code).toBe(0);
    expect((await readdir(work)).includes('never.boot')).toBe(false);
  });

  it('bad config fields and flags give one line each, and leave no output', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{"min_used_ratio": 150, "blobs_dir": "."}', /min_used_ratio must be an integer from 0 to 99 \(percent\), not 150/],
      ['{"min_used_ratio": "50", "blobs_dir": "."}', /min_used_ratio must be an integer from 0 to 99 \(percent\), not "50"/],
      ['{"compact_blob_size": -5, "blobs_dir": "."}', /compact_blob_size must be a size in bytes/],
      ['{"max_compact_size": 1e400, "blobs_dir": "."}', /max_compact_size must be a size in bytes/],
      ['{"layers_to_compact": 1.5, "blobs_dir": "."}', /layers_to_compact must be a non-negative integer, not 1.5/],
      ['{"blobs_dir": ""}', /blobs_dir must be a non-empty path/],
      ['{"blobs_dir": 7}', /blobs_dir must be a non-empty path, not 7/],
      ['[1, 2]', /must be a JSON object/],
      ['{"min_used_ratio": 5', /is not JSON/],
      ['{"min_used_ratio": 5}', /missing blobs dir/],
      [`{"blobs_dir": ${JSON.stringify(join(work, 'no-such-dir'))}}`, /is not a directory/],
    ];
    const cfg = join(work, 'bad.json');
    const out = join(work, 'bad-out.boot');
    for (const [text, want] of cases) {
      await writeFile(cfg, text);
      const r = await nydusImage(['compact', '-B', top, '--config', cfg, '-O', out]);
      const err = r.stderr.toString().trim();
      expect(r.code, text).not.toBe(0);
      expect(err.split('\n'), `${text}: ${err}`).toHaveLength(1);
      expect(err, text).toMatch(want);
    }
    for (const [args, want] of [
      [['--min-used-ratio', '100'], /--min-used-ratio 100: must be from 0 to 99/],
      [['--compact-blob-size', 'big'], /--compact-blob-size/],
    ] as const) {
      const r = await nydusImage(['compact', '-B', top, '-D', blobs, '-O', out, ...args]);
      const err = r.stderr.toString().trim();
      expect(r.code).not.toBe(0);
      expect(err.split('\n')).toHaveLength(1);
      expect(err).toMatch(want);
    }
    expect((await readdir(work)).includes('bad-out.boot')).toBe(false);
  });

  it('nydusify pack\'s argv (--backend-type, --backend-config-file, --log-level info) reads blobs from --blob-dir; a blob missing there is one line', async () => {
    const backend = join(work, 'backend.json');
    await writeFile(backend, JSON.stringify({ endpoint: 'oss.example.invalid', bucket_name: 'b' }));
    const out = join(work, 'pack-compact.boot');
    const argv = (dir: string) => ['compact', '--bootstrap', top, '--blob-dir', dir, '--min-used-ratio', '5', '--compact-blob-size', '10485760', '--max-compact-size', '104857600',
      '--layers-to-compact', '32', '--backend-type', 'oss', '--backend-config-file', backend, '--log-level', 'info', '--output-json', join(work, 'pack-compact.json'), '--output-bootstrap', out];
    await nydusImageOk(argv(blobs));
    expect(openImage(out).blobs.length).toBeLessThan(LAYERS);
    const empty = join(work, 'empty-blobs');
    await mkdir(empty);
    const r = await nydusImage(argv(empty));
    expect(r.code).toBe(1);
    expect(r.stderr.toString().trim().split('\n').filter((l) => l.startsWith('Error'))).toHaveLength(1);
    expect(r.stderr.toString()).toMatch(/is not in blobs_dir .*, and reading blobs from the oss backend is not supported yet/);
  });
});
