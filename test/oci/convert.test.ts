// `convert` against a real docker-registry: a multi-layer image made here (whiteouts, an opaque
// directory, hard links, xattrs, a symlink loop, an empty file; gzip, zstd and plain layers) is
// pushed by skopeo, converted registry → registry in-process, then judged from outside:
// `skopeo inspect --raw` shows the shape of spec oci-and-converters.md §1, and the blobs and the
// bootstrap layer pulled back, exported by `nydus-image export --block` and mounted by the
// kernel, equal the rootfs umoci unpacks from the same layers.
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert, type ConvertResult } from '../../src/oci/convert.js';
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
    { kind: 'file', path: 'bin/tool', data: prng(1, 2 * MiB + 123), mode: 0o755, mtime: T0 },
    { kind: 'symlink', path: 'bin/sh', target: 'tool', mtime: T0 },
    { kind: 'dir', path: 'data', mtime: T0, xattrs: { 'user.layer': '0' } },
    { kind: 'file', path: 'data/a', data: 'a0\n', mtime: T0 },
    { kind: 'dir', path: 'data/sub', mtime: T0 },
    { kind: 'file', path: 'data/sub/c', data: 'c0\n', mtime: T0 },
    { kind: 'file', path: 'empty', data: '', mtime: T0 },
    { kind: 'file', path: 'gone', data: 'gone0\n', mtime: T0 },
    { kind: 'dir', path: 'gonedir', mtime: T0 },
    { kind: 'file', path: 'gonedir/x', data: 'x0', mtime: T0 },
    { kind: 'dir', path: 'hard', mtime: T0 },
    { kind: 'file', path: 'hard/orig', data: 'shared by three names\n', uid: 7, gid: 8, mode: 0o640, mtime: T0, xattrs: { 'user.h': '1', 'trusted.h': 'th' } },
    { kind: 'hardlink', path: 'hard/link1', to: 'hard/orig' },
    { kind: 'hardlink', path: 'hard/link2', to: 'hard/orig' },
    { kind: 'dir', path: 'loop', mtime: T0 },
    { kind: 'symlink', path: 'loop/a', target: 'b', mtime: T0 },
    { kind: 'symlink', path: 'loop/b', target: 'a', mtime: T0 },
    { kind: 'dir', path: 'x', mtime: T0, xattrs: { 'user.dir': 'd0', 'trusted.dir': 'td0' } },
    { kind: 'file', path: 'x/xf', data: 'xattr file\n', mtime: T0, xattrs: { 'user.foo': 'bar', 'trusted.t': 'tv' } },
  ],
  [
    { kind: 'dir', path: '.', mtime: T1 },
    { kind: 'file', path: '.wh.gone', data: '', mtime: T1 },
    { kind: 'file', path: '.wh.gonedir', data: '', mtime: T1 },
    { kind: 'dir', path: 'data', mode: 0o750, mtime: T1, xattrs: { 'user.layer': '1' } },
    { kind: 'file', path: 'data/.wh..wh..opq', data: '', mtime: T1 },
    { kind: 'file', path: 'data/new', data: prng(2, 300_000), mtime: T1 },
    { kind: 'dir', path: 'hard', mtime: T1 },
    { kind: 'file', path: 'hard/link2', data: 'replaced\n', mtime: T1 },
    { kind: 'file', path: 'zero', data: '', mode: 0o600, mtime: T1 },
  ],
  [
    { kind: 'dir', path: '.', mode: 0o751, mtime: T2 },
    { kind: 'dir', path: 'newdir', mtime: T2 },
    { kind: 'file', path: 'newdir/big', data: prng(3, MiB + 1), mtime: T2 },
    { kind: 'dir', path: 'x', mtime: T2, xattrs: { 'user.dir': 'd2' } },
    { kind: 'file', path: 'x/xf', data: 'xattr file v2\n', mtime: T2, xattrs: { 'user.foo': 'baz', 'trusted.t': 'tv2' } },
  ],
  // A layer of metadata only: its blob has no chunks, but it is still one of the manifest's layers.
  [
    { kind: 'dir', path: '.', mode: 0o751, mtime: T2 },
    { kind: 'file', path: '.wh.empty', data: '', mtime: T2 },
  ],
];

/** How each layer is stored in the source registry. */
const COMPRESSION = ['gzip', 'zstd', 'gzip', 'none'] as const;

const missing = registryMissing() ?? umociMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert.test.ts\n`);

let work = '';
let reg: TestRegistry;
let rootfs = '';
let env: NodeJS.ProcessEnv;

function compressLayer(tar: Buffer, how: (typeof COMPRESSION)[number]): { data: Buffer; mediaType: string } {
  if (how === 'gzip') return { data: gzipSync(tar), mediaType: MEDIA.OCI_LAYER_GZIP };
  if (how === 'zstd') return { data: Buffer.from(zstdCompress(tar)), mediaType: MEDIA.OCI_LAYER_ZSTD };
  return { data: tar, mediaType: MEDIA.OCI_LAYER_TAR };
}

async function skopeo(args: string[]): Promise<string> {
  return (await runOk('skopeo', args, { timeoutMs: 120_000 })).stdout.toString();
}

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-'));
  // No credentials from the host: the registry here is anonymous.
  await mkdir(join(work, 'docker-config'));
  await writeFile(join(work, 'docker-config', 'config.json'), '{}');
  env = { ...process.env, DOCKER_CONFIG: join(work, 'docker-config') };
  reg = await startRegistry();
  const tars: Buffer[] = [];
  for (const [i, entries] of LAYERS.entries()) {
    await buildLayerDir(join(work, `layer${i}`), entries);
    tars.push(await tarLayer(join(work, `layer${i}`), join(work, `layer${i}.tar`)));
  }
  // umoci judges from plain tars (the same bytes the compressed layers hold).
  await writeOciLayout(join(work, 'ref'), 'v1', tars.map((data) => ({ data })));
  rootfs = await umociUnpack(join(work, 'ref'), 'v1', join(work, 'bundle'));
  await writeOciLayout(join(work, 'src'), 'v1', tars.map((t, i) => ({ ...compressLayer(t, COMPRESSION[i]!), diffId: sha256Of(t) })));
  await skopeo(['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(work, 'src')}:v1`, `docker://${reg.host}/src/image:v1`]);
}, 300_000);

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
    expect(manifest.layers).toHaveLength(LAYERS.length + 1);
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
    expect(config.history).toHaveLength(LAYERS.length + 1);
    expect(config.history.at(-1)).toEqual({ created_by: 'Nydus Converter', comment: 'Nydus Bootstrap Layer' });
  });

  it('leaves nothing in the work dir', async () => {
    expect(await readdir(workDir()).catch(() => [])).toEqual([]);
  });

  it('the blobs and bootstrap pulled back, exported as a block image and mounted, equal the umoci rootfs', async (ctx) => {
    const k = kernelSupport();
    if (!k.ok) skipLoudly(ctx as unknown as SkipContext, k.why!);
    const dir = join(work, 'pulled');
    await mkdir(dir);
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      for (const l of pulled.manifest.layers) await writeFile(join(dir, l.digest.slice(7)), await collect(await client.getBlob('dst/image', l.digest, l.size)));
    } finally {
      await client.close();
    }
    const boot = pulled.manifest.layers.at(-1)!;
    const untar = join(dir, 'untar');
    await mkdir(untar);
    await runOk('tar', ['-xzf', join(dir, boot.digest.slice(7)), '-C', untar]);
    const files = (await readdir(join(untar, 'image'))).sort();
    // Every layer with data has its blob.meta beside image.boot (the metadata-only layer has none).
    const withData = pulled.manifest.layers.slice(0, -2).map((l) => `${l.digest.slice(7)}.blob.meta`);
    expect(files).toEqual(['image.boot', ...withData].sort());
    for (const f of withData) expect((await readFile(join(untar, 'image', f))).length % 4096).toBe(0);
    const disk = join(dir, 'image.disk');
    await nydusImageOk(['export', '--block', '-B', join(untar, 'image', 'image.boot'), '-D', dir, '-O', disk]);
    const m = await mountErofs(disk, { loop: true });
    try {
      expect(await compareTrees(rootfs, m.dir)).toEqual([]);
    } finally {
      await m.unmount();
    }
  }, 120_000);
});

describe.skipIf(missing)('convert: a broken source layer', () => {
  it('a layer that is not the gzip its media type says: one line naming the layer, no tag; only the pushed layer kept for a rerun', async () => {
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      const push = async (data: Buffer) => {
        const r = await client.pushBlob('broken', () => Readable.from([data]), { digest: sha256Of(data), size: data.length });
        return { digest: r.digest, size: r.size };
      };
      const good = gzipSync(await readFile(join(work, 'layer0.tar')));
      const bad = Buffer.from('this is not gzip at all, though the media type says so');
      const layers = [await push(good), await push(bad)];
      const config = await push(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } })));
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST, config: { mediaType: MEDIA.OCI_CONFIG, ...config },
        layers: layers.map((l) => ({ mediaType: MEDIA.OCI_LAYER_GZIP, ...l })),
      }));
      await client.putManifest('broken', 'v1', manifest, MEDIA.OCI_MANIFEST);
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

/** Bytes of every file under `dir` (0 when it does not exist). */
async function treeBytes(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    const st = await lstat(join(dir, name)).catch(() => undefined);
    if (st?.isDirectory()) n += await treeBytes(join(dir, name));
    else if (st) n += st.size;
  }
  return n;
}

describe.skipIf(missing)('convert: no layer on disk', () => {
  it('the work dir never holds more than the bootstraps plus 1 MiB while 3 layers of 8 MiB convert', async () => {
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    const layers = [];
    try {
      for (let i = 0; i < 3; i++) {
        const dir = join(work, `big${i}`);
        await buildLayerDir(dir, [
          { kind: 'dir', path: '.', mtime: T0 },
          { kind: 'file', path: `big${i}`, data: prng(100 + i, 8 * MiB), mtime: T0 },
        ]);
        const tar = await tarLayer(dir, join(work, `big${i}.tar`));
        const data = gzipSync(tar, { level: 1 });
        layers.push({ mediaType: MEDIA.OCI_LAYER_GZIP, ...(await client.pushBlob('big', () => Readable.from([data]), { digest: sha256Of(data), size: data.length })), diffId: sha256Of(tar) });
      }
      const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
      const config = await client.pushBlob('big', () => Readable.from([cfg]), { digest: sha256Of(cfg), size: cfg.length });
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST, config: { mediaType: MEDIA.OCI_CONFIG, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      }));
      await client.putManifest('big', 'v1', manifest, MEDIA.OCI_MANIFEST);
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
