// `convert` against a real docker-registry: the multi-layer image of SAMPLE_LAYERS (whiteouts,
// an opaque directory, hard links, xattrs, a symlink loop, empty files) is pushed by skopeo three
// times (mixed gzip, zstd and plain layers; all gzip; all zstd), converted registry → registry
// in-process, then judged from outside: `skopeo inspect --raw` shows the shape of spec
// oci-and-converters.md §1, and the blobs and the bootstrap layer pulled back, exported by
// `nydus-image export --block` and mounted by the kernel, equal the rootfs umoci unpacks from the
// same layers — for each source compression and for --with-referrer.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert, type ConvertResult } from '../../src/oci/convert.js';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { SkipContext } from '../helpers/kernel.js';
import {
  buildLayerTars, buildSourceImage, compressLayer, judgeNydusImage, pushImage, pushLayout, SAMPLE_LAYERS, umociMissing, writeOciLayout,
  type LayerCompression, type SourceImage,
} from '../helpers/oci.js';
import { anonymousDockerEnv, collect, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk } from '../helpers/tools.js';
import { prng, treeBytes } from '../helpers/tree.js';

const T0 = 1_600_000_000;
const MiB = 1024 * 1024;

/** How each layer of SAMPLE_LAYERS is stored in the source registry, by source tag. */
const COMPRESSION: Record<'v1' | 'gzip' | 'zstd', readonly LayerCompression[]> = {
  v1: ['gzip', 'zstd', 'gzip', 'none'],
  gzip: SAMPLE_LAYERS.map(() => 'gzip'),
  zstd: SAMPLE_LAYERS.map(() => 'zstd'),
};

const missing = registryMissing() ?? umociMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert.test.ts\n`);

let work = '';
let reg: TestRegistry;
let src: SourceImage;
let env: NodeJS.ProcessEnv;

async function skopeo(args: string[]): Promise<string> {
  return (await runOk('skopeo', args, { timeoutMs: 120_000 })).stdout.toString();
}

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-'));
  // No credentials from the host: the registry here is anonymous.
  env = await anonymousDockerEnv(work);
  reg = await startRegistry();
  src = await buildSourceImage(join(work, 'src'), SAMPLE_LAYERS);
  for (const [tag, how] of Object.entries(COMPRESSION)) {
    await writeOciLayout(join(work, `layout-${tag}`), tag, src.tars.map((t, i) => compressLayer(t, how[i]!)));
    await pushLayout(join(work, `layout-${tag}`), tag, `${reg.host}/src/image:${tag}`);
  }
}, 300_000);

/** The kernel's judge of a converted image in this file's registry. */
const judge = (ctx: unknown, repo: string, ref: string, name: string) =>
  judgeNydusImage(ctx as SkipContext, { at: { registry: reg.host, repo }, ref, rootfs: src.rootfs, scratch: join(work, `judge-${name}`) });

afterAll(async () => {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Pulled {
  manifest: { mediaType: string; layers: Array<{ mediaType: string; digest: Digest; size: number; annotations?: Record<string, string> }>; config: { mediaType: string; digest: Digest }; annotations?: Record<string, string>; subject?: unknown };
  config: { rootfs: { diff_ids: string[] }; history: Array<{ created_by?: string; comment?: string }>; config?: unknown };
}

async function inspect(ref: string): Promise<Pulled> {
  const manifest = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as Pulled['manifest'];
  const config = JSON.parse(await skopeo(['inspect', '--raw', '--config', '--tls-verify=false', `docker://${ref}`])) as Pulled['config'];
  return { manifest, config };
}

describe.skipIf(missing)('convert: registry → registry', () => {
  let result: ConvertResult;
  let pulled: Pulled;
  const workDir = () => join(work, 'convert-work');

  beforeAll(async () => {
    if (missing) return;
    result = await convert({
      source: `${reg.host}/src/image:v1`, target: `${reg.host}/dst/image:v1-nydus`, plainHttp: true, env, workDir: workDir(),
    });
    pulled = await inspect(`${reg.host}/dst/image:v1-nydus`);
  }, 300_000);

  it('pushes the shape of spec §1: one nydus blob per layer, then the gzip bootstrap layer', () => {
    const { manifest } = pulled;
    expect(manifest.mediaType).toBe(MEDIA.OCI_MANIFEST);
    expect(manifest.config.mediaType).toBe(MEDIA.OCI_CONFIG);
    expect(manifest.layers).toHaveLength(SAMPLE_LAYERS.length + 1);
    for (const l of manifest.layers.slice(0, -1)) {
      expect(l.mediaType).toBe(MEDIA.NYDUS_BLOB);
      expect(l.annotations).toEqual({ 'containerd.io/snapshot/nydus-blob': 'true' });
    }
    const boot = manifest.layers.at(-1)!;
    expect(boot.mediaType).toBe(MEDIA.OCI_LAYER_GZIP);
    expect(boot.annotations).toEqual({ 'containerd.io/snapshot/nydus-bootstrap': 'true', 'containerd.io/snapshot/nydus-fs-version': '6' });
    expect(manifest.subject).toBeUndefined();
    expect(manifest.annotations).toMatchObject({
      'containerd.io/snapshot/nydus-source-reference': `${reg.host}/src/image:v1`,
      'containerd.io/snapshot/nydus-fs-version': '6',
    });
    expect(manifest.annotations!['containerd.io/snapshot/nydus-source-digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(manifest.annotations!['containerd.io/snapshot/nydus-builder-version']).toMatch(/^v/);
    expect(result.manifests[0]!.blobs).toEqual(manifest.layers.slice(0, -1).map((l) => l.digest));
    expect(result.mediaType).toBe(MEDIA.OCI_MANIFEST);
  });

  it('rewrites diff_ids (blob digests, then the sha256 of the bootstrap tar) and appends one history entry', async () => {
    const { manifest, config } = pulled;
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      const boot = manifest.layers.at(-1)!;
      const tar = gunzipSync(await collect(await client.getBlob('dst/image', boot.digest, boot.size)));
      expect(config.rootfs.diff_ids).toEqual([...manifest.layers.slice(0, -1).map((l) => l.digest), sha256Of(tar)]);
    } finally {
      await client.close();
    }
    expect(config.history).toHaveLength(SAMPLE_LAYERS.length + 1);
    expect(config.history.at(-1)).toEqual({ created_by: 'Nydus Converter', comment: 'Nydus Bootstrap Layer' });
  });

  it('leaves nothing in the work dir', async () => {
    expect(await readdir(workDir()).catch(() => [])).toEqual([]);
  });

  it('the bootstrap layer holds image/image.boot and a blob.meta (whole 4 KiB blocks) for every layer with chunks', async () => {
    const boot = pulled.manifest.layers.at(-1)!;
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    const untar = join(work, 'boot-untar');
    await mkdir(untar);
    try {
      await writeFile(join(work, 'boot.tar.gz'), await collect(await client.getBlob('dst/image', boot.digest, boot.size)));
    } finally {
      await client.close();
    }
    await runOk('tar', ['-xzf', join(work, 'boot.tar.gz'), '-C', untar]);
    // The metadata-only layer has no blob.meta.
    const withData = pulled.manifest.layers.slice(0, -2).map((l) => `${l.digest.slice(7)}.blob.meta`);
    expect((await readdir(join(untar, 'image'))).sort()).toEqual(['image.boot', ...withData].sort());
    for (const f of withData) expect((await readFile(join(untar, 'image', f))).length % 4096).toBe(0);
  });

  it('the blobs and bootstrap pulled back, exported as a block image and mounted, equal the umoci rootfs', async (ctx) => {
    expect(await judge(ctx, 'dst/image', 'v1-nydus', 'mixed')).toEqual([]);
  }, 120_000);
});

describe.skipIf(missing)('convert: each source compression and --with-referrer, judged by the kernel', () => {
  it.for(['gzip', 'zstd'] as const)('%s source layers: the Nydus image mounts as the umoci rootfs', { timeout: 120_000 }, async (tag, ctx) => {
    const r = await convert({ source: `${reg.host}/src/image:${tag}`, target: `${reg.host}/dst/image:${tag}-nydus`, plainHttp: true, env, workDir: join(work, `w-${tag}`) });
    const srcLayers = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/src/image:${tag}`])).layers as Array<{ mediaType: string }>;
    expect(srcLayers.map((l) => l.mediaType)).toEqual(SAMPLE_LAYERS.map(() => (tag === 'gzip' ? MEDIA.OCI_LAYER_GZIP : MEDIA.OCI_LAYER_ZSTD)));
    expect(r.manifests[0]!.blobs).toHaveLength(SAMPLE_LAYERS.length);
    expect(await judge(ctx, 'dst/image', `${tag}-nydus`, tag)).toEqual([]);
  });

  it('--with-referrer: the subject is the source manifest, and the image mounts as the umoci rootfs', async (ctx) => {
    await convert({ source: `${reg.host}/src/image:v1`, target: `${reg.host}/dst/referrer:v1`, plainHttp: true, env, workDir: join(work, 'w-ref'), withReferrer: true });
    const srcBytes = Buffer.from(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/src/image:v1`]));
    const { manifest } = await inspect(`${reg.host}/dst/referrer:v1`);
    expect(manifest.subject).toEqual({ mediaType: MEDIA.OCI_MANIFEST, digest: sha256Of(srcBytes), size: srcBytes.length });
    expect(await judge(ctx, 'dst/referrer', 'v1', 'referrer')).toEqual([]);
  }, 120_000);
});

describe.skipIf(missing)('convert: a broken source layer', () => {
  it('a layer that is not the gzip its media type says: one line naming the layer, no tag; only the pushed layer kept for a rerun', async () => {
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      const good = gzipSync(await readFile(join(work, 'src', 'layer0.tar')));
      const bad = Buffer.from('this is not gzip at all, though the media type says so');
      const { layers } = await pushImage(client, 'broken', 'v1', [good, bad].map((data) => ({ data, mediaType: MEDIA.OCI_LAYER_GZIP })));
      const workDir = join(work, 'broken-work');
      const err = await convert({ source: `${reg.host}/broken:v1`, target: `${reg.host}/broken:nydus`, plainHttp: true, env, workDir }).then(() => undefined, (e: Error) => e);
      expect(err?.message.split('\n')).toHaveLength(1);
      expect(err?.message).toContain(`layer 1 (${layers[1]!.digest}): not valid gzip`);
      expect(await client.headManifest('broken', 'nydus')).toBeUndefined();
      // The layer that was pushed is kept for a rerun; nothing of the failed one is.
      expect((await readdir(join(workDir, 'nydusify-layers'))).filter((n) => !n.endsWith('.json') && !n.endsWith('.blob.meta'))).toHaveLength(1);
    } finally {
      await client.close();
    }
  }, 60_000);
});

describe.skipIf(missing)('convert: no layer on disk', () => {
  it('the work dir never holds more than the bootstraps plus 1 MiB while 3 layers of 8 MiB convert', async () => {
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      const tars = await buildLayerTars(join(work, 'big'), [0, 1, 2].map((i) => [
        { kind: 'dir', path: '.', mtime: T0 },
        { kind: 'file', path: `big${i}`, data: prng(100 + i, 8 * MiB), mtime: T0 },
      ]));
      await pushImage(client, 'big', 'v1', tars.map((t) => ({ data: gzipSync(t, { level: 1 }), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(t) })));
    } finally {
      await client.close();
    }
    const workDir = join(work, 'big-work');
    let peak = 0;
    let running = true;
    const sampler = (async () => {
      while (running) {
        peak = Math.max(peak, await treeBytes(workDir));
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    let result: ConvertResult;
    try {
      result = await convert({ source: `${reg.host}/big:v1`, target: `${reg.host}/big:nydus`, plainHttp: true, env, workDir });
    } finally {
      running = false;
      await sampler;
    }
    const blobs = (await inspect(`${reg.host}/big:nydus`)).manifest.layers;
    const total = blobs.slice(0, -1).reduce((n, l) => n + l.size, 0);
    expect(total).toBeGreaterThan(24 * MiB);
    expect(result.manifests[0]!.blobs).toHaveLength(3);
    // Three per-layer bootstraps, their blob.meta files and the merged bootstrap are a few KiB each.
    expect(peak).toBeLessThan(1 * MiB);
  }, 180_000);
});
