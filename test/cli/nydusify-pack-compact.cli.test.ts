// `nydusify pack --compact` (issue 17 part 4) as upstream's packer runs it: the parent bootstrap (a
// chain of 34 small layers built with a chunk dict, whose upper layers delete and replace what lower
// ones stored) is compacted into <parent>.compact first, and the new layer is built on that. The
// result names fewer blobs, all in the output directory, and unpacks to the same tar as the layer
// built on the uncompacted parent. --nydus-image gets upstream's compact argv, then create on the
// compacted parent; the backend config it is handed is the blob side's, gone afterwards. With
// --backend-push the compacted parent's blobs are what goes to S3 (s3rver), read back equal. A bad
// compact config or a missing backend config ends in one line with nothing written.
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/read/open.js';
import { buildCompactChain } from '../helpers/compact-chain.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { prng } from '../helpers/tree.js';
import { BIN, nydusImageOk } from './cli-runner.js';
import { errorLine, nydusifyIn, outputBlobs } from './pack-fixture.js';

const LAYERS = 34;
let work = '';
let chain = '';
let dictBoot = '';
let top = '';
let src = '';
let s3: S3Server;
let nydusify: ReturnType<typeof nydusifyIn>['nydusify'];
let nydusifyOk: ReturnType<typeof nydusifyIn>['ok'];

/** A backend config compact is told about but that nothing contacts without --backend-push. */
const unusedBackend = ['--backend-type', 's3', '--backend-config', JSON.stringify({ endpoint: '127.0.0.1:1', region: 'r', bucket_name: 'b', blob_prefix: 'blobs/' })];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydusify-pack-compact-'));
  ({ nydusify, ok: nydusifyOk } = nydusifyIn(work));
  // The parent chain's blobs are named by id in `chain`, where pack finds a parent's blobs (its output directory).
  chain = join(work, 'chain');
  await mkdir(chain);
  ({ dictBoot, top } = await buildCompactChain({ work, blobDir: chain, bootDir: chain, layers: LAYERS }));
  // The layer pack builds on top: new data, a file the dict has, and a whiteout of the last bulk.
  src = join(work, 'new-layer');
  await mkdir(join(src, 'app'), { recursive: true });
  await writeFile(join(src, 'app', 'new'), prng(77, 100_000));
  await writeFile(join(src, 'app', 'dict-copy'), prng(1003, 40_000));
  await mkdir(join(src, `l${LAYERS - 1}`));
  await writeFile(join(src, `l${LAYERS - 1}`, '.wh.bulk'), '');
  s3 = await startS3();
}, 300_000);

afterAll(async () => {
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A fresh output directory holding the chain's blobs (by id), as a previous pack would have left them. */
async function outWithChain(name: string): Promise<string> {
  const out = join(work, name);
  // Not a compacted bootstrap an earlier test left beside the chain's.
  await cp(chain, out, { recursive: true, filter: (f) => !f.endsWith('.compact') });
  return out;
}

async function totalSize(dir: string, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await stat(join(dir, id))).size;
  return n;
}

async function unpackTar(boot: string, blobDir: string, name: string): Promise<Buffer> {
  const tar = join(work, `${name}.tar`);
  await nydusImageOk(['unpack', '--bootstrap', boot, '--blob-dir', blobDir, '--output', tar]);
  return readFile(tar);
}

const compactConfig = async (name: string, cfg: object): Promise<string> => {
  const file = join(work, name);
  await writeFile(file, JSON.stringify(cfg));
  return file;
};

let plainTar: Buffer;
let plainBlobs: string[] = [];

describe('nydusify pack --compact', () => {
  it('without --compact the layer names every blob of the chain (the baseline)', async () => {
    const out = await outWithChain('plain');
    await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--parent-bootstrap', top, '--chunk-dict', `bootstrap=${dictBoot}`, '--chunk-size', '0x10000']);
    plainBlobs = openImage(join(out, 'app.meta')).blobs.map((b) => b.blobId);
    // The dict, the 34 layers and the new layer's blob.
    expect(plainBlobs).toHaveLength(LAYERS + 2);
    plainTar = await unpackTar(join(out, 'app.meta'), out, 'plain');
    expect(plainTar.length).toBeGreaterThan(LAYERS * 40_000);
  });

  it('with a config file compacts the parent first: fewer blobs, fewer bytes, the same tar', async () => {
    const out = await outWithChain('compacted');
    const cfg = await compactConfig('compact.json', { min_used_ratio: 60, compact_blob_size: 10 << 20, max_compact_size: 100 << 20, layers_to_compact: 2 });
    const r = await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--parent-bootstrap', top, '--chunk-dict', `bootstrap=${dictBoot}`,
      '--chunk-size', '0x10000', '--compact', '--compact-config-file', cfg, ...unusedBackend]);
    expect(r.stderr.toString()).toContain(`successfully compacted bootstrap ${top}, use new parent ${top}.compact`);
    const parentIds = openImage(`${top}.compact`).blobs.map((b) => b.blobId);
    const ids = openImage(join(out, 'app.meta')).blobs.map((b) => b.blobId);
    expect(await outputBlobs(out)).toEqual(ids);
    // The layer is built on the compacted parent: its table is the parent's plus the new blob.
    expect(ids.slice(0, parentIds.length)).toEqual(parentIds);
    expect(ids.length).toBe(parentIds.length + 1);
    expect(ids.length).toBeLessThan(plainBlobs.length / 4);
    expect(ids).toContain(openImage(dictBoot).blobs[0]!.blobId);
    const chainIds = plainBlobs.slice(0, -1);
    const [before, after] = [await totalSize(out, chainIds), await totalSize(out, parentIds)];
    process.stderr.write(`pack --compact of ${LAYERS} layers + dict: parent blobs ${chainIds.length} -> ${parentIds.length}, bytes ${before} -> ${after}\n`);
    expect(after).toBeLessThan(before);
    const result = JSON.parse(await readFile(join(out, 'compact-result.json'), 'utf8')) as { bootstrap: string; blobs: string[] };
    expect(result.bootstrap).toBe(`${top}.compact`);
    expect(result.blobs).toEqual(parentIds);
    expect(existsSync(join(out, 'backend-config.json'))).toBe(false);
    // The new blob is named by its id, as on any parent.
    expect(existsSync(join(out, ids.at(-1)!))).toBe(true);
    await nydusImageOk(['check', '-B', join(out, 'app.meta'), '-D', out]);
    expect((await unpackTar(join(out, 'app.meta'), out, 'compacted')).equals(plainTar)).toBe(true);
  });

  it('without a config file uses upstream\'s defaults (min_used_ratio 5, layers_to_compact 32): 35 parent blobs are compacted', async () => {
    const out = await outWithChain('defaults');
    await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--parent-bootstrap', top, '--chunk-dict', `bootstrap=${dictBoot}`, '--chunk-size', '0x10000', '--compact', ...unusedBackend]);
    const ids = openImage(join(out, 'app.meta')).blobs.map((b) => b.blobId);
    expect(ids.length).toBeLessThan(plainBlobs.length / 4);
    expect((await unpackTar(join(out, 'app.meta'), out, 'defaults')).equals(plainTar)).toBe(true);
  });

  it('layers_to_compact above the parent\'s blob count: no compaction, the layer is built on the parent as it is', async () => {
    const out = await outWithChain('few');
    const cfg = await compactConfig('few.json', { layers_to_compact: 100 });
    const r = await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--parent-bootstrap', top, '--chunk-dict', `bootstrap=${dictBoot}`, '--chunk-size', '0x10000', '--compact', '--compact-config-file', cfg, ...unusedBackend]);
    expect(r.stderr.toString()).not.toContain('successfully compacted');
    expect(existsSync(`${top}.compact`)).toBe(false);
    expect(openImage(join(out, 'app.meta')).blobs.map((b) => b.blobId)).toEqual(plainBlobs);
  });

  it('--nydus-image gets upstream\'s compact argv, then create on the compacted parent, and makes the in-process bytes', async () => {
    const launcher = join(work, 'nydus-image');
    const argvLog = join(work, 'argv.log');
    const seen = join(work, 'seen-backend.json');
    // The launcher keeps a copy of the backend config compact is handed (it is removed afterwards).
    await writeFile(launcher, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${argvLog}\n[ "$1" = compact ] && cp "$(dirname "$0")/ext/backend-config.json" ${seen}\nexec ${process.execPath} ${BIN} "$@"\n`);
    await chmod(launcher, 0o755);
    const cfg = await compactConfig('ext.json', { min_used_ratio: 60, layers_to_compact: 2 });
    const runs: Array<[string, string[]]> = [['inproc', []], ['ext', ['--nydus-image', launcher]]];
    const metas: Buffer[] = [];
    for (const [name, extra] of runs) {
      const out = await outWithChain(name);
      await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--parent-bootstrap', top, '--chunk-dict', `bootstrap=${dictBoot}`, '--chunk-size', '0x10000',
        '--compact', '--compact-config-file', cfg, ...unusedBackend, ...extra]);
      metas.push(await readFile(join(out, 'app.meta')));
      expect(existsSync(join(out, 'backend-config.json'))).toBe(false);
    }
    const ext = join(work, 'ext');
    expect((await readFile(argvLog, 'utf8')).trim().split('\n')).toEqual([
      `compact --bootstrap ${top} --blob-dir ${ext} --min-used-ratio 60 --compact-blob-size 10485760 --max-compact-size 104857600 --layers-to-compact 2 ` +
        `--backend-type s3 --backend-config-file ${ext}/backend-config.json --log-level info --output-json ${ext}/compact-result.json --output-bootstrap ${top}.compact --chunk-dict bootstrap=${dictBoot}`,
      `create --parent-bootstrap ${top}.compact --chunk-dict bootstrap=${dictBoot} --bootstrap ${ext}/app.meta --log-level warn --whiteout-spec oci --output-json ${ext}/output.json ` +
        `--blob ${ext}/app.blob --fs-version 6 --compressor zstd --chunk-size 0x10000 ${src}`,
    ]);
    // upstream's rawBlobBackendCfg: blob_prefix becomes object_prefix, meta_prefix and blob_prefix are gone.
    expect(JSON.parse(await readFile(seen, 'utf8'))).toEqual({ endpoint: '127.0.0.1:1', region: 'r', bucket_name: 'b', object_prefix: 'blobs/' });
    expect(metas[1]!.equals(metas[0]!)).toBe(true);
    expect((await readdir(ext)).sort()).toEqual((await readdir(join(work, 'inproc'))).sort());
  });

  it('with --backend-push the compacted parent\'s blobs are pushed, not the chain\'s; the bucket reads back the same tar', async () => {
    const out = await outWithChain('pushed');
    const cfg = await compactConfig('push.json', { min_used_ratio: 60, layers_to_compact: 2 });
    const pushCfg = JSON.stringify({ ...s3.config(), meta_prefix: 'c/meta/', blob_prefix: 'c/blobs/' });
    await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--parent-bootstrap', top, '--chunk-dict', `bootstrap=${dictBoot}`, '--chunk-size', '0x10000',
      '--compact', '--compact-config-file', cfg, '--backend-push', '--backend-type', 's3', '--backend-config', pushCfg]);
    const ids = openImage(join(out, 'app.meta')).blobs.map((b) => b.blobId);
    expect(ids.length).toBeLessThan(plainBlobs.length / 4);
    const keys = (await s3.keys()).filter((k) => k.startsWith('c/')).sort();
    expect(keys).toEqual([...ids.map((id) => `c/blobs/${id}`), 'c/meta/app'].sort());
    const x = await mkdtemp(join(work, 'x-'));
    const boot = join(x, 'boot');
    await writeFile(boot, await s3.get('c/meta/app'));
    const backend = ['--backend-type', 's3', '--backend-config', JSON.stringify(s3.config({ object_prefix: 'c/blobs/' }))];
    await nydusImageOk(['check', '--bootstrap', boot, ...backend]);
    await nydusImageOk(['unpack', '--bootstrap', boot, ...backend, '--output', join(x, 'out.tar')]);
    expect((await readFile(join(x, 'out.tar'))).equals(plainTar)).toBe(true);
  });

  it('--compact without --parent-bootstrap, or a config file without --compact, is said, not silently dropped', async () => {
    const out = join(work, 'no-parent');
    const r = await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--compact', ...unusedBackend]);
    expect(r.stderr.toString()).toContain('--compact has nothing to do without --parent-bootstrap');
    expect(await outputBlobs(out)).toHaveLength(1);
    const cfg = await compactConfig('unused.json', {});
    const r2 = await nydusifyOk(['pack', '--source-dir', src, '--name', 'app2', '-o', out, '--compact-config-file', cfg]);
    expect(r2.stderr.toString()).toMatch(/WARN.*--compact-config-file is not used without --compact/);
  });

  it('a v5 parent: under layers_to_compact it is built on as it is; compacting it is refused in one line (v6 only)', async () => {
    const out = join(work, 'v5');
    await nydusifyOk(['pack', '--source-dir', join(work, 'layer0'), '--name', 'base', '-o', out, '--fs-version', '5']);
    const parent = join(out, 'base.meta');
    const r = await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--fs-version', '5', '--parent-bootstrap', parent, '--compact', ...unusedBackend]);
    expect(r.stderr.toString()).toContain('fewer than layers_to_compact 32: nothing to do');
    expect(openImage(join(out, 'app.meta')).version).toBe(5);
    expect(await outputBlobs(out)).toHaveLength(2);
    const cfg = await compactConfig('v5.json', { layers_to_compact: 0 });
    const refused = join(work, 'v5-refused');
    const bad = await nydusify(['pack', '--source-dir', src, '--name', 'app', '-o', refused, '--fs-version', '5', '--parent-bootstrap', parent, '--compact', '--compact-config-file', cfg, ...unusedBackend]);
    expect(bad.code).toBe(1);
    expect(errorLine(bad)).toMatch(/compacting RAFS v5 images is not supported \(only v6\)/);
    expect(existsSync(refused)).toBe(false);
  });

  it('blobs_dir elsewhere: compaction reads and writes blobs there, and the push finds them there', async () => {
    const blobsDir = await outWithChain('elsewhere-blobs');
    const out = join(work, 'elsewhere-out');
    const cfg = await compactConfig('elsewhere.json', { min_used_ratio: 60, layers_to_compact: 2, blobs_dir: blobsDir });
    const pushCfg = JSON.stringify({ ...s3.config(), meta_prefix: 'e/meta/', blob_prefix: 'e/blobs/' });
    await nydusifyOk(['pack', '--source-dir', src, '--name', 'app', '-o', out, '--parent-bootstrap', top, '--chunk-dict', `bootstrap=${dictBoot}`, '--chunk-size', '0x10000',
      '--compact', '--compact-config-file', cfg, '--backend-push', '--backend-type', 's3', '--backend-config', pushCfg]);
    const ids = openImage(join(out, 'app.meta')).blobs.map((b) => b.blobId);
    const parentIds = openImage(`${top}.compact`).blobs.map((b) => b.blobId);
    for (const id of parentIds) expect(existsSync(join(blobsDir, id)), id).toBe(true);
    // Only the new layer's blob, the bootstrap and compact's result are in the output directory.
    expect((await readdir(out)).sort()).toEqual(['app.meta', 'compact-result.json', ids.at(-1)!, 'output.json'].sort());
    expect((await s3.keys()).filter((k) => k.startsWith('e/')).sort()).toEqual([...ids.map((id) => `e/blobs/${id}`), 'e/meta/app'].sort());
  });
});

describe('nydusify pack --compact refuses in one line, writing nothing', () => {
  const cases: Array<[label: string, cfg: string | undefined, extra: () => string[], message: RegExp]> = [
    ['min_used_ratio above 99', '{"min_used_ratio": 150}', () => unusedBackend, /compact config .*: min_used_ratio must be an integer from 0 to 99 \(percent\), not 150/],
    ['a string as layers_to_compact', '{"layers_to_compact": "32"}', () => unusedBackend, /layers_to_compact must be a non-negative integer, not "32"/],
    ['a config that is no JSON', '{"min_used_ratio": 5', () => unusedBackend, /compact config .* is not JSON/],
    ['a blobs_dir that is no path', '{"blobs_dir": 7}', () => unusedBackend, /blobs_dir must be a non-empty path, not 7/],
    ['a missing config file', undefined, () => ['--compact-config-file', join(work, 'none.json'), ...unusedBackend], /none\.json/],
    ['no backend configuration', '{}', () => [], /backend configuration is empty/],
    ['blobs of the parent missing from blobs_dir', '{"layers_to_compact": 0, "blobs_dir": "EMPTY"}', () => unusedBackend, /is not in blobs_dir .*, and reading blobs from the s3 backend is not supported yet/],
  ];
  for (const [label, cfg, extra, message] of cases) {
    it(label, async () => {
      const out = join(work, 'refused', label.replace(/\W+/g, '-'));
      const args = ['pack', '--source-dir', src, '--name', 'n', '-o', out, '--parent-bootstrap', top, '--compact'];
      await rm(`${top}.compact`, { force: true });
      if (cfg !== undefined) {
        const empty = join(work, 'empty-blobs');
        await mkdir(empty, { recursive: true });
        const file = join(work, 'bad.json');
        await writeFile(file, cfg.replace('"EMPTY"', JSON.stringify(empty)));
        args.push('--compact-config-file', file);
      }
      const r = await nydusify([...args, ...extra()]);
      expect(r.code, r.stderr.toString()).not.toBe(0);
      expect(r.code).not.toBe(70);
      expect(errorLine(r)).toMatch(message);
      expect(existsSync(out), `${out} was left behind`).toBe(false);
      expect(existsSync(`${top}.compact`)).toBe(false);
    });
  }
});
