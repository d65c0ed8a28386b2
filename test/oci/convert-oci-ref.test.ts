// `convert --oci-ref` (spec oci-and-converters.md §1.8) against a real docker-registry: a
// multi-layer gzip image (whiteouts, an opaque directory, hard links, xattrs, an empty file, a
// metadata-only layer) is converted to a zran image. The manifest lists one ref blob per layer
// (nydus-blob and nydus-ref annotations) and the bootstrap layer last; the original gzip layers
// are in the target repository (mounted from the source repository: same registry); `check`
// with the source passes (its filesystem rule reads every file through the ZRAN tables); and the
// kernel's view of `export --block` of the merged bootstrap, with the gzip layers as its blobs,
// equals the rootfs umoci unpacks from the source.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert, type ConvertResult } from '../../src/oci/convert.js';
import { check } from '../../src/oci/check.js';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { compareTrees } from '../helpers/compare.js';
import { kernelSupport, mountErofs, skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { buildLayerDir, tarLayer, umociMissing, umociUnpack, writeOciLayout, type LayerEntry } from '../helpers/oci.js';
import { collect, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';
import { nydusImageOk } from '../cli/cli-runner.js';

const T0 = 1_600_000_000;
const T1 = 1_650_000_000;
const T2 = 1_700_000_000;
const MiB = 1024 * 1024;

/** Lower → upper. */
const LAYERS: LayerEntry[][] = [
  [
    { kind: 'dir', path: '.', mtime: T0 },
    { kind: 'dir', path: 'bin', mtime: T0 },
    { kind: 'file', path: 'bin/tool', data: prng(1, 3 * MiB + 123), mode: 0o755, mtime: T0 },
    { kind: 'symlink', path: 'bin/sh', target: 'tool', mtime: T0 },
    { kind: 'dir', path: 'data', mtime: T0, xattrs: { 'user.layer': '0' } },
    { kind: 'file', path: 'data/a', data: 'a0\n', mtime: T0 },
    { kind: 'file', path: 'empty', data: '', mtime: T0 },
    { kind: 'file', path: 'gone', data: 'gone0\n', mtime: T0 },
    { kind: 'dir', path: 'hard', mtime: T0 },
    { kind: 'file', path: 'hard/orig', data: 'shared by three names\n', uid: 7, gid: 8, mode: 0o640, mtime: T0, xattrs: { 'user.h': '1' } },
    { kind: 'hardlink', path: 'hard/link1', to: 'hard/orig' },
    { kind: 'hardlink', path: 'hard/link2', to: 'hard/orig' },
  ],
  [
    { kind: 'dir', path: '.', mtime: T1 },
    { kind: 'file', path: '.wh.gone', data: '', mtime: T1 },
    { kind: 'dir', path: 'data', mode: 0o750, mtime: T1, xattrs: { 'user.layer': '1' } },
    { kind: 'file', path: 'data/.wh..wh..opq', data: '', mtime: T1 },
    { kind: 'file', path: 'data/new', data: prng(2, 300_000), mtime: T1 },
    { kind: 'dir', path: 'hard', mtime: T1 },
    { kind: 'file', path: 'hard/link2', data: 'replaced\n', mtime: T1 },
  ],
  [
    { kind: 'dir', path: '.', mode: 0o751, mtime: T2 },
    { kind: 'dir', path: 'newdir', mtime: T2 },
    { kind: 'file', path: 'newdir/text', data: Buffer.from('a line of text that repeats\n'.repeat(100_000)), mtime: T2 },
  ],
  // Metadata only: its ref blob indexes no chunk, but it is still one of the manifest's layers.
  [
    { kind: 'dir', path: '.', mode: 0o751, mtime: T2 },
    { kind: 'file', path: '.wh.empty', data: '', mtime: T2 },
  ],
];

const missing = registryMissing() ?? umociMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-oci-ref.test.ts\n`);

let work = '';
let reg: TestRegistry;
let rootfs = '';
let env: NodeJS.ProcessEnv;
let sourceLayers: Digest[] = [];

async function skopeo(args: string[]): Promise<string> {
  return (await runOk('skopeo', args, { timeoutMs: 120_000 })).stdout.toString();
}

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-oci-ref-'));
  await mkdir(join(work, 'docker-config'));
  await writeFile(join(work, 'docker-config', 'config.json'), '{}');
  env = { ...process.env, DOCKER_CONFIG: join(work, 'docker-config') };
  reg = await startRegistry();
  const tars: Buffer[] = [];
  for (const [i, entries] of LAYERS.entries()) {
    await buildLayerDir(join(work, `layer${i}`), entries);
    tars.push(await tarLayer(join(work, `layer${i}`), join(work, `layer${i}.tar`)));
  }
  await writeOciLayout(join(work, 'ref'), 'v1', tars.map((data) => ({ data })));
  rootfs = await umociUnpack(join(work, 'ref'), 'v1', join(work, 'bundle'));
  const gz = tars.map((t) => gzipSync(t));
  sourceLayers = gz.map((g) => sha256Of(g));
  await writeOciLayout(join(work, 'src'), 'v1', tars.map((t, i) => ({ data: gz[i]!, mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(t) })));
  await skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(work, 'src')}:v1`, `docker://${reg.host}/src/image:v1`]);
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
    manifest = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/dst/image:v1-zran`])) as typeof manifest;
  }, 300_000);

  it('pushes the shape of spec §1.8: one ref blob per gzip layer (nydus-blob, nydus-ref), the bootstrap layer last', () => {
    expect(manifest.mediaType).toBe(MEDIA.OCI_MANIFEST);
    expect(manifest.layers).toHaveLength(LAYERS.length + 1);
    manifest.layers.slice(0, -1).forEach((l, i) => {
      expect(l.mediaType).toBe(MEDIA.NYDUS_BLOB);
      expect(l.annotations).toEqual({ 'containerd.io/snapshot/nydus-blob': 'true', 'containerd.io/snapshot/nydus-ref': sourceLayers[i] });
      // A ref blob holds no file data: far smaller than the layer with its 3 MiB of random bytes.
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
    const k = kernelSupport();
    if (!k.ok) skipLoudly(ctx as unknown as SkipContext, k.why!);
    const dir = join(work, 'pulled');
    await mkdir(dir);
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      // The ref blobs (by digest: the bootstrap names them as its blobs' meta) and the gzip layers (by digest: the blob ids).
      for (const l of manifest.layers.slice(0, -1)) await writeFile(join(dir, l.digest.slice(7)), await collect(await client.getBlob('dst/image', l.digest, l.size)));
      for (const d of sourceLayers) {
        const size = (await client.headBlob('dst/image', d))!;
        await writeFile(join(dir, d.slice(7)), await collect(await client.getBlob('dst/image', d, size)));
      }
      const boot = manifest.layers.at(-1)!;
      await writeFile(join(work, 'boot.tar.gz'), await collect(await client.getBlob('dst/image', boot.digest, boot.size)));
    } finally {
      await client.close();
    }
    const untar = join(work, 'boot-layer');
    await mkdir(untar);
    await runOk('tar', ['-C', untar, '-xzf', join(work, 'boot.tar.gz')]);
    const disk = join(work, 'disk.img');
    await nydusImageOk(['export', '--block', '-B', join(untar, 'image', 'image.boot'), '-D', dir, '-O', disk]);
    const m = await mountErofs(disk, { loop: true });
    try {
      expect(await compareTrees(rootfs, m.dir)).toEqual([]);
    } finally {
      await m.unmount();
    }
    // The bootstrap layer also carries each layer's blob.meta, named by its blob id.
    const metas = (await readFile(join(untar, 'image', `${sourceLayers[0]!.slice(7)}.blob.meta`))).length;
    expect(metas % 4096).toBe(0);
  }, 300_000);

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
