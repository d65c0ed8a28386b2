// `nydusify check` against a real docker-registry: the multi-layer SAMPLE_LAYERS image
// (whiteouts, an opaque directory, hard links, xattrs, symlinks, empty files; gzip, zstd and plain
// layers) is pushed by skopeo and converted, then checked: the converted image passes; a Nydus
// image whose bootstrap was rebuilt with a changed mode, a changed content and a missing file fails
// naming exactly those three; a bootstrap layer without its annotation and a wrong bootstrap diff_id
// fail rule 1 with one clear line; the work dir holds upstream's layout and the JSON report.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compressorByName, digesterByName } from '../../src/algo/index.js';
import { emitBootstrap } from '../../src/bootstrap/emit.js';
import { planBootstrap } from '../../src/bootstrap/plan.js';
import { blobEntryFromInfo } from '../../src/builder/blob-table.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import { check, type CheckResult } from '../../src/oci/check.js';
import { bootstrapLayer } from '../../src/oci/bootstrap-layer.js';
import { convert } from '../../src/oci/convert.js';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import type { ImageConfig, ImageManifest } from '../../src/oci/manifest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { hostPlatform } from '../../src/oci/platform.js';
import { RegistryClient } from '../../src/oci/registry.js';
import type { ChunkInfo } from '../../src/read/model.js';
import { openImage } from '../../src/read/open.js';
import { treeFromImage } from '../../src/tree/from-image.js';
import type { TreeNode } from '../../src/tree/node.js';
import { normalizeHardlinks } from '../../src/tree/overlay.js';
import { buildLayerTars, compressLayer, pushLayout, SAMPLE_LAYERS, writeOciLayout, type LayerCompression } from '../helpers/oci.js';
import { anonymousDockerEnv, collect, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, run, type RunResult } from '../helpers/tools.js';
import { REPO } from '../cli/cli-runner.js';

/** How each layer of SAMPLE_LAYERS is stored in the source registry. */
const COMPRESSION: readonly LayerCompression[] = ['gzip', 'zstd', 'gzip', 'none'];

const missing = registryMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH') ?? (process.getuid?.() === 0 ? undefined : 'trusted.* xattrs in the test layers need root');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/check.test.ts\n`);

let work = '';
let reg: TestRegistry;
let env: NodeJS.ProcessEnv;
let client: RegistryClient;
const SRC = () => `${reg.host}/src/image:v1`;
const DST = (tag: string) => `${reg.host}/dst/image:${tag}`;

const runCheck = (target: string, extra: Partial<Parameters<typeof check>[0]> = {}): Promise<CheckResult> =>
  check({ source: SRC(), target, plainHttp: true, env, workDir: join(work, 'out'), ...extra });

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-check-'));
  env = await anonymousDockerEnv(work);
  reg = await startRegistry();
  client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
  const tars = await buildLayerTars(join(work, 'layers'), SAMPLE_LAYERS);
  await writeOciLayout(join(work, 'src'), 'v1', tars.map((t, i) => compressLayer(t, COMPRESSION[i]!)));
  await pushLayout(join(work, 'src'), 'v1', SRC());
  await convert({ source: SRC(), target: DST('v1-nydus'), plainHttp: true, env, workDir: join(work, 'convert-work') });
}, 300_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Pushed {
  manifest: ImageManifest;
  config: ImageConfig;
}

async function pulled(tag: string): Promise<Pushed> {
  const f = await client.getManifest('dst/image', tag);
  if (f.kind !== 'manifest') throw new Error('expected a manifest');
  const { config } = await client.getConfig('dst/image', f.manifest.config);
  return { manifest: f.manifest, config };
}

async function pushBytes(data: Buffer): Promise<{ digest: Digest; size: number }> {
  const r = await client.pushBlob('dst/image', () => Readable.from([data]), { digest: sha256Of(data), size: data.length });
  return { digest: r.digest, size: r.size };
}

/** Pushes a config and a manifest made from `m` under `tag`. */
async function pushImage(tag: string, manifest: ImageManifest, config: ImageConfig): Promise<void> {
  const c = await pushBytes(Buffer.from(JSON.stringify(config)));
  const m: ImageManifest = { ...manifest, config: { ...manifest.config, ...c } };
  await client.putManifest('dst/image', tag, Buffer.from(JSON.stringify(m)), MEDIA.OCI_MANIFEST);
}

/** The members of a gzip tar, by name. */
async function untarGz(data: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const e of extract) {
      const parts: Buffer[] = [];
      for await (const c of e) parts.push(c as Buffer);
      if (e.header.type === 'file') out.set(e.header.name, Buffer.concat(parts));
    }
  })();
  extract.end(gunzipSync(data));
  await done;
  return out;
}

/** The node at `path` ("a/b") in a tree. */
function nodeAt(root: TreeNode, path: string): { node: TreeNode; parent: TreeNode } {
  let parent = root;
  let node = root;
  for (const name of path.split('/')) {
    parent = node;
    const next = (node.children ?? []).find((c) => c.name.toString() === name);
    if (!next) throw new Error(`no ${path} in the tree`);
    node = next;
  }
  return { node, parent };
}

/**
 * The bootstrap with `edit` applied to its tree, emitted again as merge emits it: the same blob
 * table and chunks, so it reads the same blobs; only what `edit` changed differs.
 */
async function rebuiltBootstrap(boot: Buffer, edit: (root: TreeNode) => void): Promise<Buffer> {
  const file = join(work, `boot-${Math.random().toString(16).slice(2)}`);
  await writeFile(file, boot);
  const img = openImage(file);
  const chunks: ChunkInfo[] = [];
  const { root } = treeFromImage(img, chunks);
  edit(root);
  normalizeHardlinks(root);
  return emitBootstrap({
    plan: planBootstrap(root, 4096), chunks, blobs: img.blobs.map((b, i) => blobEntryFromInfo(b, i, file)),
    flags: compressorByName(img.compressor)!.superFlag | digesterByName(img.digester)!.superFlag | ext.FLAG_ENCRYPTION_NONE,
    chunkSize: img.chunkSize, blockSize: 4096, explicitUidGid: (img.flags & ext.FLAG_EXPLICIT_UID_GID) !== 0, prefetch: [],
  });
}

const lines = (r: CheckResult) => r.differences.map((d) => d.message);

describe.skipIf(missing)('nydusify check', () => {
  it('passes a converted image (gzip, zstd and plain layers; whiteouts, opaque dir, hardlinks, xattrs, symlinks, empty files) and writes upstream\'s layout', async () => {
    const out = join(work, 'out');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'stale'), 'from an earlier run');
    const r = await runCheck(DST('v1-nydus'));
    expect(lines(r)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.rules).toEqual({ manifest: 'passed', bootstrap: 'passed', filesystem: 'passed' });
    expect(r.source).toMatchObject({ kind: 'oci', reference: SRC() });
    expect(r.target).toMatchObject({ kind: 'nydus', reference: DST('v1-nydus') });
    // Wiped first, then upstream's layout.
    expect(existsSync(join(out, 'stale'))).toBe(false);
    expect((await readdir(join(out, 'source'))).sort()).toEqual(['oci_config.json', 'oci_manifest.json']);
    expect((await readdir(join(out, 'target'))).sort()).toEqual(['nydus_bootstrap', 'nydus_config.json', 'nydus_manifest.json', 'nydus_output.json']);
    const manifest = JSON.parse(await readFile(join(out, 'target', 'nydus_manifest.json'), 'utf8')) as ImageManifest;
    expect(manifest.layers.at(-1)!.annotations).toMatchObject({ 'containerd.io/snapshot/nydus-bootstrap': 'true' });
    const boot = await readFile(join(out, 'target', 'nydus_bootstrap', 'image', 'image.boot'));
    expect(openImage(join(out, 'target', 'nydus_bootstrap', 'image', 'image.boot')).blobs.length).toBeGreaterThan(0);
    expect(boot.length % 4096).toBe(0);
    const output = JSON.parse(await readFile(join(out, 'target', 'nydus_output.json'), 'utf8')) as { blobs: string[]; fs_version: string };
    expect(output.fs_version).toBe('6');
    // Every layer with data has its blob in the table (the metadata-only layer's blob has no chunks).
    expect(output.blobs).toEqual(manifest.layers.slice(0, 3).map((l) => l.digest.slice(7)));
    const report = JSON.parse(await readFile(join(out, 'check-report.json'), 'utf8')) as { ok: boolean; differences: unknown[] };
    expect(report).toMatchObject({ ok: true, differences: [] });
    // The blobs fetched for the comparison are gone.
    expect(existsSync(join(out, 'target', 'blobs'))).toBe(false);
  }, 120_000);

  it('a Nydus image with a changed mode, a changed content and a missing file fails, naming each of the three', async () => {
    const { manifest, config } = await pulled('v1-nydus');
    const bootDesc = manifest.layers.at(-1)!;
    const members = await untarGz(await collect(await client.getBlob('dst/image', bootDesc.digest, bootDesc.size)));
    const boot = await rebuiltBootstrap(members.get('image/image.boot')!, (root) => {
      const tool = nodeAt(root, 'bin/tool').node;
      tool.mode = (tool.mode & ~0o7777) | 0o700;
      // Same size, other bytes: the chunks of /same/two.
      nodeAt(root, 'same/one').node.chunks = nodeAt(root, 'same/two').node.chunks!.map((c) => ({ ...c }));
      const { parent } = nodeAt(root, 'data/new');
      parent.children = parent.children!.filter((c) => c.name.toString() !== 'new');
    });
    const metas = [...members].filter(([name]) => name.endsWith('.blob.meta')).map(([name, data]) => ({ hex: name.slice('image/'.length, -'.blob.meta'.length), data }));
    const layer = await bootstrapLayer(boot, metas);
    await pushBytes(layer.data);
    await pushImage('broken', { ...manifest, layers: [...manifest.layers.slice(0, -1), { ...bootDesc, digest: layer.digest, size: layer.data.length }] },
      { ...config, rootfs: { ...config.rootfs, diff_ids: [...config.rootfs.diff_ids.slice(0, -1), layer.diffId] } });

    const seen: string[] = [];
    const r = await runCheck(DST('broken'), { onDifference: (d) => seen.push(d.message) });
    expect(r.ok).toBe(false);
    expect(r.rules).toEqual({ manifest: 'passed', bootstrap: 'passed', filesystem: 'failed' });
    expect(r.differences.map((d) => [d.rule, d.path, d.field])).toEqual([
      ['filesystem', '/bin/tool', 'mode'],
      ['filesystem', '/data/new', 'missing'],
      ['filesystem', '/same/one', 'content'],
    ]);
    expect(lines(r)).toEqual(seen);
    expect(lines(r)[0]).toBe('filesystem: "/bin/tool": mode differs: source 0755, target 0700');
    expect(lines(r)[1]).toBe('filesystem: "/data/new": missing in the target (the source has a regular file)');
    expect(lines(r)[2]).toMatch(/^filesystem: "\/same\/one": content differs: source sha256:[0-9a-f]{64}, target sha256:[0-9a-f]{64}$/);
    expect(r.differences[2]!.source).toBe(sha256Of('one: 1111\n'));
    expect(r.differences[2]!.target).toBe(sha256Of('two: 2222\n'));
    const report = JSON.parse(await readFile(r.report, 'utf8')) as { ok: boolean; differences: Array<{ path: string; field: string }> };
    expect(report.ok).toBe(false);
    expect(report.differences.map((d) => `${d.path} ${d.field}`)).toEqual(['/bin/tool mode', '/data/new missing', '/same/one content']);
  }, 120_000);

  it('rule 1: a bootstrap layer without its annotation fails with one clear line, and the file systems are not compared', async () => {
    const { manifest, config } = await pulled('v1-nydus');
    const layers = manifest.layers.map((l, i) => (i === manifest.layers.length - 1 ? { ...l, annotations: {} } : l));
    await pushImage('noannot', { ...manifest, layers }, config);
    const r = await runCheck(DST('noannot'));
    expect(r.ok).toBe(false);
    expect(r.rules.filesystem).toBe('skipped');
    expect(lines(r)).toEqual([
      `manifest: target image ${DST('noannot')}: invalid bootstrap layer in nydus image manifest: the last layer (${manifest.layers.at(-1)!.digest}) lacks the annotation containerd.io/snapshot/nydus-bootstrap: "true"`,
    ]);
  }, 60_000);

  it('rule 1: a config whose last diff_id is not the bootstrap tar\'s sha256 fails, naming both', async () => {
    const { manifest, config } = await pulled('v1-nydus');
    const ids = config.rootfs.diff_ids;
    await pushImage('baddiff', manifest, { ...config, rootfs: { ...config.rootfs, diff_ids: [...ids.slice(0, -1), ids[0]!] } });
    const r = await runCheck(DST('baddiff'));
    expect(r.ok).toBe(false);
    expect(lines(r)).toEqual([`manifest: target image ${DST('baddiff')}: invalid bootstrap layer diff id: ${ids.at(-1)} (calculated) != ${ids[0]} (in image config)`]);
    // The rest still ran: only the diff_id is wrong.
    expect(r.rules).toEqual({ manifest: 'failed', bootstrap: 'passed', filesystem: 'passed' });
  }, 60_000);

  it('rule 2: a blob of the bootstrap missing from the layers is named', async () => {
    const { manifest, config } = await pulled('v1-nydus');
    // Drop the first blob layer (and its diff_id): the bootstrap still names it.
    await pushImage('lostblob', { ...manifest, layers: manifest.layers.slice(1) }, { ...config, rootfs: { ...config.rootfs, diff_ids: config.rootfs.diff_ids.slice(1) } });
    const r = await runCheck(DST('lostblob'));
    expect(r.ok).toBe(false);
    const first = manifest.layers[0]!.digest.slice(7);
    expect(lines(r).filter((l) => l.startsWith('bootstrap:'))).toEqual([`bootstrap: target image ${DST('lostblob')}: blob "${first}" of the bootstrap's blob table is not a blob layer of the manifest`]);
    // Its files cannot be read: each one is a difference, not a crash.
    expect(r.differences.filter((d) => d.rule === 'filesystem' && d.field === 'content').length).toBeGreaterThan(0);
  }, 60_000);
});

describe.skipIf(missing)('nydusify check: indexes, no source, a hostile bootstrap layer', () => {
  /** An index in dst/image holding the source OCI manifest and the converted Nydus one for the host platform. */
  async function pushMergedIndex(tag: string): Promise<void> {
    const src = await client.getManifest('src/image', 'v1');
    if (src.kind !== 'manifest') throw new Error('expected a manifest');
    for (const d of [src.manifest.config, ...src.manifest.layers]) {
      await client.pushBlob('dst/image', () => Readable.from([]), { digest: d.digest, size: d.size, mountFrom: 'src/image' });
    }
    await client.putManifest('dst/image', src.digest, src.bytes, src.mediaType);
    const nydus = await client.getManifest('dst/image', 'v1-nydus');
    const platform = { os: 'linux', architecture: hostPlatform().architecture };
    const index = {
      schemaVersion: 2, mediaType: MEDIA.OCI_INDEX,
      manifests: [
        { mediaType: src.mediaType, digest: src.digest, size: src.bytes.length, platform },
        { mediaType: nydus.mediaType, digest: nydus.digest, size: nydus.bytes.length, platform, artifactType: MEDIA.NYDUS_ARTIFACT },
      ],
    };
    await client.putManifest('dst/image', tag, Buffer.from(JSON.stringify(index)), MEDIA.OCI_INDEX);
  }

  it('--multi-platform: an index with both manifests passes (the Nydus one is checked); a lone manifest fails in one line', async () => {
    await pushMergedIndex('merged');
    const r = await runCheck(DST('merged'), { multiPlatform: true });
    expect(lines(r)).toEqual([]);
    expect(r.target).toMatchObject({ kind: 'nydus', platform: `linux/${hostPlatform().architecture}` });
    const files = (await readdir(join(work, 'out', 'target'))).sort();
    expect(files).toEqual(['nydus_bootstrap', 'nydus_config.json', 'nydus_index.json', 'nydus_manifest.json', 'nydus_output.json', 'oci_config.json', 'oci_index.json', 'oci_manifest.json']);

    const lone = await runCheck(DST('v1-nydus'), { multiPlatform: true });
    expect(lines(lone)).toEqual([`manifest: target image ${DST('v1-nydus')}: --multi-platform: not an image index`]);
  }, 120_000);

  it('without --source: rules 1 and 2 only', async () => {
    const r = await runCheck(DST('v1-nydus'), { source: undefined });
    expect(r.ok).toBe(true);
    expect(r.rules).toEqual({ manifest: 'passed', bootstrap: 'passed', filesystem: 'skipped' });
    expect(existsSync(join(work, 'out', 'source'))).toBe(false);
  }, 60_000);

  it('a bootstrap layer with a member outside its directory stops the check with one line, writing nothing outside', async () => {
    const { manifest, config } = await pulled('v1-nydus');
    const pack = tar.pack();
    const parts: Buffer[] = [];
    const done = new Promise<void>((r) => pack.on('end', () => r()));
    pack.on('data', (c) => parts.push(c as Buffer));
    pack.entry({ name: 'image/../../escaped', mode: 0o644 }, 'x');
    pack.finalize();
    await done;
    const raw = Buffer.concat(parts);
    const data = gzipSync(raw);
    await pushBytes(data);
    await pushImage('escape', { ...manifest, layers: [...manifest.layers.slice(0, -1), { ...manifest.layers.at(-1)!, digest: sha256Of(data), size: data.length }] },
      { ...config, rootfs: { ...config.rootfs, diff_ids: [...config.rootfs.diff_ids.slice(0, -1), sha256Of(raw)] } });
    const err = await runCheck(DST('escape')).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/bootstrap layer sha256:[0-9a-f]{64}: member "image\/\.\.\/\.\.\/escaped": a "\.\." component is not allowed$/);
    expect(err?.message).not.toContain('\n');
    expect(existsSync(join(work, 'out', 'escaped'))).toBe(false);
    expect(existsSync(join(work, 'escaped'))).toBe(false);
    const report = JSON.parse(await readFile(join(work, 'out', 'check-report.json'), 'utf8')) as { ok: boolean; error: string };
    expect(report).toMatchObject({ ok: false, error: err!.message });
  }, 60_000);
});

describe.skipIf(missing)('nydusify check (bin/nydusify.js)', () => {
  const NYDUSIFY = join(REPO, 'bin', 'nydusify.js');
  const nydusify = (args: readonly string[]): Promise<RunResult> => run(process.execPath, [NYDUSIFY, ...args], { cwd: work, env, timeoutMs: 300_000 });

  it('exits 0 for the converted image, 1 with one stdout line per difference for the broken one', async () => {
    const good = await nydusify(['check', '--source', SRC(), '--target', DST('v1-nydus'), '--plain-http', '--work-dir', join(work, 'cli-out')]);
    expect(good.stderr.toString()).not.toMatch(/Error/);
    expect(good.code).toBe(0);
    expect(good.stdout.toString()).toBe('');
    expect(existsSync(join(work, 'cli-out', 'target', 'nydus_bootstrap', 'image', 'image.boot'))).toBe(true);

    const bad = await nydusify(['check', '--source', SRC(), '--target', DST('broken'), '--plain-http', '--work-dir', join(work, 'cli-out')]);
    expect(bad.code).toBe(1);
    const out = bad.stdout.toString().trim().split('\n');
    expect(out).toHaveLength(3);
    expect(out[0]).toBe('filesystem: "/bin/tool": mode differs: source 0755, target 0700');
    const err = bad.stderr.toString().trim().split('\n');
    expect(err.at(-1)).toBe(`Error: check failed: 3 differences found (report: ${join(work, 'cli-out', 'check-report.json')})`);
  }, 120_000);

  it('refuses --nydusd, --nydus-image and the backend flags in one line each', async () => {
    for (const args of [['--nydusd', 'nydusd'], ['--nydus-image', '/usr/bin/nydus-image'], ['--source-backend-type', 'oss']]) {
      const r = await nydusify(['check', '--target', DST('v1-nydus'), '--plain-http', ...args]);
      expect(r.code).toBe(1);
      const err = r.stderr.toString().trim().split('\n');
      expect(err).toHaveLength(1);
      expect(err[0]).toMatch(/^Error: --nydus|^Error: storage backends/);
    }
  });

  it('refuses a --work-dir holding the current directory (it is removed first), touching nothing', async () => {
    await writeFile(join(work, 'keep'), 'x');
    const r = await nydusify(['check', '--target', DST('v1-nydus'), '--plain-http', '--work-dir', '.']);
    expect(r.code).toBe(2);
    expect(r.stderr.toString().trim()).toMatch(/^Error: --work-dir ".*" is removed before the check, and it holds the current directory; give a directory of its own$/);
    expect(existsSync(join(work, 'keep'))).toBe(true);
  });
});
