// `convert --chunk-dict bootstrap:registry:REF` against a real docker-registry (spec
// oci-and-converters.md §1.3, §2.2 step 4): an image converted with its own earlier conversion as
// the dict stores no chunk again. Its own blobs hold metadata only, the dict blobs it uses are
// listed after them in the manifest (mounted into the target repository), and check passes:
// every file's content is read back through the dict's blobs. The same with --nydus-image.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseChunkDictFlag } from '../../src/oci/chunk-dict.js';
import { check } from '../../src/oci/check.js';
import { convert, type ConvertResult } from '../../src/oci/convert.js';
import { sha256Of } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildLayerTars, pushImage } from '../helpers/oci.js';
import { anonymousDockerEnv, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { prng } from '../helpers/tree.js';

const MiB = 1024 * 1024;
const T0 = 1_600_000_000;
const missing = registryMissing();
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-chunk-dict.test.ts\n`);

let work = '';
let reg: TestRegistry;
let client: RegistryClient;
let env: NodeJS.ProcessEnv;
let dict: ConvertResult;

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-dict-'));
  env = await anonymousDockerEnv(work);
  reg = await startRegistry();
  client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  const tars = await buildLayerTars(join(work, 'layers'), [
    [
      { kind: 'dir', path: '.', mtime: T0 },
      { kind: 'file', path: 'big', data: prng(1, 3 * MiB + 17), mtime: T0 },
      { kind: 'file', path: 'small', data: 'small file\n', mtime: T0 },
    ],
    [
      { kind: 'dir', path: '.', mtime: T0 },
      { kind: 'file', path: 'other', data: prng(2, 2 * MiB), mtime: T0 },
      { kind: 'file', path: '.wh.small', data: '', mtime: T0 },
    ],
  ]);
  await pushImage(client, 'app', 'v1', tars.map((t) => ({ data: gzipSync(t, { level: 1 }), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(t) })));
  // The dict: the same image converted before, in another repository.
  dict = await convert({ source: `${reg.host}/app:v1`, target: `${reg.host}/dict/base:nydus`, plainHttp: true, env, workDir: join(work, 'w') });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function expectDeduplicated(tag: string, r: ConvertResult): Promise<void> {
  const f = await client.getManifest('app', tag);
  if (f.kind !== 'manifest') return expect.fail('expected a manifest');
  const layers = f.manifest.layers;
  const dictBlobs = dict.manifests[0]!.blobs;
  // Its own two blobs, then the dict's blobs it uses (both hold chunks), then the bootstrap.
  expect(layers).toHaveLength(2 + dictBlobs.length + 1);
  const own = layers.slice(0, 2);
  expect(layers.slice(2, -1).map((l) => l.digest)).toEqual(dictBlobs);
  for (const l of layers.slice(0, -1)) expect(l).toMatchObject({ mediaType: MEDIA.NYDUS_BLOB, annotations: { 'containerd.io/snapshot/nydus-blob': 'true' } });
  // No data went up again: the own blobs are metadata (bootstrap, TOC), a few KiB against 5 MiB of files.
  for (const l of own) expect(l.size).toBeLessThan(64 * 1024);
  expect(own.map((l) => l.digest)).not.toContain(dictBlobs[0]);
  expect(r.manifests[0]!.blobs).toEqual(layers.slice(0, -1).map((l) => l.digest));
  // The dict blobs are in the target repository (mounted from dict/base).
  for (const [i, d] of dictBlobs.entries()) expect(await client.headBlob('app', d)).toBe(layers[2 + i]!.size);
  const cfg = await client.getConfig('app', f.manifest.config);
  expect(cfg.config.rootfs.diff_ids).toHaveLength(layers.length);
  const c = await check({ source: `${reg.host}/app:v1`, target: `${reg.host}/app:${tag}`, plainHttp: true, env, workDir: join(work, `check-${tag}`) });
  expect(c.differences).toEqual([]);
  expect(c.ok).toBe(true);
}

describe.skipIf(missing)('convert --chunk-dict', () => {
  it('the flag: bootstrap:registry:REF only', () => {
    expect(parseChunkDictFlag('bootstrap:registry:localhost:5000/a/b:tag')).toBe('localhost:5000/a/b:tag');
    expect(() => parseChunkDictFlag('bootstrap:local:/x')).toThrow(/bootstrap:local:PATH is not supported/);
    expect(() => parseChunkDictFlag('blob:registry:x')).toThrow(/the type must be bootstrap/);
    expect(() => parseChunkDictFlag('x')).toThrow(/expected bootstrap:registry:REF/);
  });

  it('converting an image with its own conversion as the dict uploads no data again; check passes', async () => {
    const r = await convert({ source: `${reg.host}/app:v1`, target: `${reg.host}/app:dedup`, plainHttp: true, env, workDir: join(work, 'w'), chunkDict: `${reg.host}/dict/base:nydus` });
    await expectDeduplicated('dedup', r);
  }, 120_000);

  it('the same with --nydus-image (create and merge get --chunk-dict bootstrap=PATH)', async () => {
    const launcher = join(work, 'nydus-image');
    await writeFile(launcher, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(resolve('bin/nydus-image.js'))} "$@"\n`);
    await chmod(launcher, 0o755);
    const r = await convert({
      source: `${reg.host}/app:v1`, target: `${reg.host}/app:dedup-ext`, plainHttp: true, env, workDir: join(work, 'w'),
      chunkDict: `${reg.host}/dict/base:nydus`, nydusImage: launcher,
    });
    await expectDeduplicated('dedup-ext', r);
  }, 120_000);

  it('a dict that is not a Nydus image: one line naming it', async () => {
    const err = await convert({ source: `${reg.host}/app:v1`, target: `${reg.host}/app:never`, plainHttp: true, env, workDir: join(work, 'w'), chunkDict: `${reg.host}/app:v1` })
      .then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(new RegExp(`^chunk dict ${reg.host}/app:v1: not a Nydus image`));
    expect(await client.headManifest('app', 'never')).toBeUndefined();
  }, 60_000);
});
