// `convert --oci-ref` (spec oci-and-converters.md §1.8) against a real docker-registry: the
// multi-layer image of SAMPLE_LAYERS (whiteouts, an opaque directory, hard links, xattrs, empty
// files, a metadata-only layer) and a layer of highly compressible text, as gzip layers, is
// converted to a zran image. The manifest lists one ref blob per layer
// (nydus-blob and nydus-ref annotations) and the bootstrap layer last; the original gzip layers
// are in the target repository (mounted from the source repository: same registry); `check`
// with the source passes (its filesystem rule reads every file through the ZRAN tables); and the
// kernel's view of `export --block` of the merged bootstrap, with the gzip layers as its blobs,
// equals the rootfs umoci unpacks from the source.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert, type ConvertResult } from '../../src/oci/convert.js';
import { check } from '../../src/oci/check.js';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { SkipContext } from '../helpers/kernel.js';
import { buildSourceImage, compressLayer, judgeNydusImage, pushLayout, SAMPLE_LAYERS, umociMissing, writeOciLayout, type LayerEntry, type SourceImage } from '../helpers/oci.js';
import { anonymousDockerEnv, collect, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk } from '../helpers/tools.js';

/**
 * SAMPLE_LAYERS and, on top, a file of repeated text: 2.8 MB from a few KiB of gzip, so a ZRAN
 * context starts by output size (2 MiB) inside one file (the random bytes below start them by input).
 */
const LAYERS: readonly (readonly LayerEntry[])[] = [
  ...SAMPLE_LAYERS,
  [
    { kind: 'dir', path: '.', mode: 0o751, mtime: 1_700_000_000 },
    { kind: 'dir', path: 'text', mtime: 1_700_000_000 },
    { kind: 'file', path: 'text/lines', data: Buffer.from('a line of text that repeats\n'.repeat(100_000)), mtime: 1_700_000_000 },
  ],
];

const missing = registryMissing() ?? umociMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-oci-ref.test.ts\n`);

let work = '';
let reg: TestRegistry;
let src: SourceImage;
let env: NodeJS.ProcessEnv;
/** The source's gzip layers, lower → upper. */
let sourceLayers: Digest[] = [];

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-oci-ref-'));
  env = await anonymousDockerEnv(work);
  reg = await startRegistry();
  src = await buildSourceImage(join(work, 'src'), LAYERS);
  const gz = src.tars.map((t) => compressLayer(t, 'gzip'));
  sourceLayers = gz.map((l) => sha256Of(l.data));
  await writeOciLayout(join(work, 'layout'), 'v1', gz);
  await pushLayout(join(work, 'layout'), 'v1', `${reg.host}/src/image:v1`);
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Layer {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
}

describe.skipIf(missing)('convert --oci-ref: registry → registry', () => {
  let result: ConvertResult;
  let manifest: { mediaType: string; layers: Layer[] };

  beforeAll(async () => {
    if (missing) return;
    result = await convert({
      source: `${reg.host}/src/image:v1`, target: `${reg.host}/dst/image:v1-zran`, plainHttp: true, env, workDir: join(work, 'convert-work'), ociRef: true,
    });
    manifest = JSON.parse((await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/dst/image:v1-zran`])).stdout.toString()) as typeof manifest;
  }, 300_000);

  it('pushes the shape of spec §1.8: one ref blob per gzip layer (nydus-blob, nydus-ref), the bootstrap layer last', () => {
    expect(manifest.mediaType).toBe(MEDIA.OCI_MANIFEST);
    expect(manifest.layers).toHaveLength(LAYERS.length + 1);
    manifest.layers.slice(0, -1).forEach((l, i) => {
      expect(l.mediaType).toBe(MEDIA.NYDUS_BLOB);
      expect(l.annotations).toEqual({ 'containerd.io/snapshot/nydus-blob': 'true', 'containerd.io/snapshot/nydus-ref': sourceLayers[i] });
      // A ref blob holds no file data: far smaller than the layer with its 2 MiB of random bytes.
      if (i === 0) expect(l.size).toBeLessThan(200_000);
    });
    expect(manifest.layers.at(-1)!.annotations).toEqual({ 'containerd.io/snapshot/nydus-bootstrap': 'true', 'containerd.io/snapshot/nydus-fs-version': '6' });
    expect(result.manifests[0]!.blobs).toEqual(manifest.layers.slice(0, -1).map((l) => l.digest));
  });

  it('keeps the original gzip layers in the target repository', async () => {
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      for (const d of sourceLayers) expect(await client.headBlob('dst/image', d)).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('check against the source passes: the bootstrap, its blob table and every file read through the ZRAN tables', async () => {
    const r = await check({ source: `${reg.host}/src/image:v1`, target: `${reg.host}/dst/image:v1-zran`, plainHttp: true, env, workDir: join(work, 'check-out') });
    expect(r.differences).toEqual([]);
    expect(r.rules).toEqual({ manifest: 'passed', bootstrap: 'passed', filesystem: 'passed' });
    expect(r.ok).toBe(true);
  }, 300_000);

  it('the kernel\'s view of export --block (merged bootstrap, gzip layers as blobs) equals the umoci rootfs', async (ctx) => {
    // The ref blobs (the manifest's layers: the bootstrap names them as its blobs' meta) and the
    // gzip layers (the blob ids), both read from the target repository.
    const diffs = await judgeNydusImage(ctx as unknown as SkipContext, {
      at: { registry: reg.host, repo: 'dst/image' }, ref: 'v1-zran', rootfs: src.rootfs, scratch: join(work, 'judge'), extraBlobs: sourceLayers,
    });
    expect(diffs).toEqual([]);
  }, 300_000);

  it('the bootstrap layer also carries each layer\'s blob.meta, named by its blob id', async () => {
    const boot = manifest.layers.at(-1)!;
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      await writeFile(join(work, 'boot.tar.gz'), await collect(await client.getBlob('dst/image', boot.digest, boot.size)));
    } finally {
      await client.close();
    }
    const meta = (await runOk('tar', ['-xzOf', join(work, 'boot.tar.gz'), `image/${sourceLayers[0]!.slice(7)}.blob.meta`])).stdout;
    expect(meta.length).toBeGreaterThan(0);
    expect(meta.length % 4096).toBe(0);
  });

  it('--oci-ref with a chunk dict is refused with one line, before anything is pushed', async () => {
    const bad = await convert({
      source: `${reg.host}/src/image:v1`, target: `${reg.host}/dst/image:bad`, plainHttp: true, env, workDir: join(work, 'w2'), ociRef: true, chunkDict: 'x',
    }).catch((e: Error) => e);
    expect((bad as Error).message).toMatch(/^--oci-ref with --chunk-dict is not supported yet$/);
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      expect(await client.headManifest('dst/image', 'bad')).toBeUndefined();
    } finally {
      await client.close();
    }
  });
});
