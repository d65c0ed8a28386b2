// OCI-layout archives (src/oci/layout.ts): what our writer makes, GNU tar and skopeo read; what a
// hostile archive holds (names that climb out, links, duplicates, lies about sizes and digests,
// oversized JSON, truncation, compression, FIFOs) ends in one line naming the member, before or
// instead of anything being pushed. Then convert of the multi-layer SAMPLE_LAYERS image with
// --source-archive on an archive skopeo wrote, and --target-archive whose result skopeo inspects
// and whose blobs `nydus-image check` verifies; each result, read back from the registry or from
// the archive's layout, exported by `nydus-image export --block` and mounted by the kernel, equals
// the rootfs umoci unpacks from the source layers.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/oci/convert.js';
import { copy } from '../../src/oci/copy.js';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import { LayoutSink, LayoutSource } from '../../src/oci/layout.js';
import type { Descriptor } from '../../src/oci/manifest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { NydusError } from '../../src/errors.js';
import { decode, encode } from '../../src/format/tar/header.js';
import { nydusImageOk, REPO } from '../cli/cli-runner.js';
import type { SkipContext } from '../helpers/kernel.js';
import {
  buildSourceImage, compressLayer, judgeNydusImage, pushLayout, SAMPLE_LAYERS, umociMissing, writeOciLayout, writeTar,
  type ImageAt, type SourceImage, type TarMember,
} from '../helpers/oci.js';
import { anonymousDockerEnv, caught, collect, registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, run, runOk } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';

const missing = registryMissing() ?? umociMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/archive.test.ts (registry parts)\n`);

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-archive-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const skopeo = async (args: string[]) => (await runOk('skopeo', args, { timeoutMs: 120_000 })).stdout;

/** A small valid image as layout members: a layer, a config, a manifest and the index naming it. */
function image(): { members: TarMember[]; layer: Buffer; manifest: Buffer; manifestDesc: Descriptor } {
  const layer = Buffer.from('not really a tar, but a blob is a blob');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Of(layer)] } }));
  const d = (data: Buffer, mediaType: string): Descriptor => ({ mediaType, digest: sha256Of(data), size: data.length });
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST, config: d(config, MEDIA.OCI_CONFIG), layers: [d(layer, MEDIA.OCI_LAYER_TAR)] }));
  const manifestDesc = d(manifest, MEDIA.OCI_MANIFEST);
  const blob = (data: Buffer): TarMember => ({ name: `blobs/sha256/${sha256Of(data).slice(7)}`, type: 'file', data });
  return {
    layer, manifest, manifestDesc,
    members: [
      { name: 'oci-layout', type: 'file', data: '{"imageLayoutVersion":"1.0.0"}' },
      blob(layer), blob(config), blob(manifest),
      { name: 'index.json', type: 'file', data: JSON.stringify({ schemaVersion: 2, manifests: [manifestDesc] }) },
    ],
  };
}

async function tarOf(name: string, members: readonly TarMember[]): Promise<string> {
  const out = join(work, name);
  await writeTar(out, members);
  return out;
}

/** Opens the layout and reads the image through: top, every blob. */
async function readAll(file: string): Promise<void> {
  const src = await LayoutSource.open(file);
  try {
    const top = await src.top();
    if (top.kind !== 'manifest') throw new Error('expected a manifest');
    for (const d of [top.manifest.config, ...top.manifest.layers]) await collect(await src.getBlob(d.digest, d.size));
  } finally {
    await src.close();
  }
}

describe('layout: our writer', () => {
  it('encodes tar headers that decode to what was written, sizes past 8 GiB in base-256', () => {
    for (const size of [0, 1, 0o77777777777, 0o77777777777 + 1, 2 ** 40 + 5]) {
      const h = decode(encode({ name: `blobs/sha256/${'a'.repeat(64)}`, size, mode: 0o644, mtime: 0 }));
      expect(h.size).toBe(size);
      expect(h.name.toString()).toBe(`blobs/sha256/${'a'.repeat(64)}`);
      expect(h.format).toBe('ustar');
    }
    expect(() => encode({ name: 'x'.repeat(101), size: 0, mode: 0, mtime: 0 })).toThrow(/1-100 bytes/);
  });

  it('writes a tar that GNU tar lists and our reader reads back, a blob seen twice stored once', async () => {
    const file = join(work, 'ours.tar');
    const sink = await LayoutSink.create(file, { imageName: 'example.com/a/b:v1' });
    const big = prng(3, 3 * 1024 * 1024 + 17);
    const r1 = await sink.pushBlob(() => Readable.from([big.subarray(0, 1000), big.subarray(1000)]));
    // The same content again without its digest given (two platforms sharing a layer): one member.
    const r2 = await sink.pushBlob(Readable.from([big]));
    expect(r2.digest).toBe(r1.digest);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [r1.digest] } }));
    await sink.pushBlob(Readable.from([config]), { digest: sha256Of(config), size: config.length });
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST,
      config: { mediaType: MEDIA.OCI_CONFIG, digest: sha256Of(config), size: config.length },
      layers: [{ mediaType: MEDIA.OCI_LAYER_TAR, digest: r1.digest, size: big.length }],
    }));
    await sink.putManifest('v1', manifest, MEDIA.OCI_MANIFEST);
    await sink.commit();
    await sink.close();
    const listing = (await runOk('tar', ['-tf', file])).stdout.toString().trim().split('\n');
    expect(listing.filter((n) => n.startsWith('blobs/sha256/') && n.length > 14).sort()).toEqual([r1.digest, sha256Of(config), sha256Of(manifest)].map((d) => `blobs/sha256/${d.slice(7)}`).sort());
    expect(listing).toContain('index.json');
    expect(listing).toContain('oci-layout');
    expect((await runOk('tar', ['-xOf', file, `blobs/sha256/${r1.digest.slice(7)}`])).stdout.equals(big)).toBe(true);
    await readAll(file);
    if (hasTool('skopeo')) expect((await skopeo(['inspect', '--raw', `oci-archive:${file}`])).equals(manifest)).toBe(true);
  });

  it('a blob that is not what its digest says fails the write, and the archive never appears', async () => {
    const file = join(work, 'never.tar');
    const sink = await LayoutSink.create(file);
    const err = await caught(sink.pushBlob(Readable.from([Buffer.from('abc')]), { digest: sha256Of('abd'), size: 3 }));
    expect(err.message).toContain('digest');
    await sink.close();
    await expect(stat(file)).rejects.toThrow();
    expect((await readdir(work)).filter((n) => n.includes('never.tar'))).toEqual([]);
  });
});

describe('layout: hostile archives', () => {
  it('reads the valid image the hostile ones are made from', async () => {
    await readAll(await tarOf('valid.tar', image().members));
  });

  it('a blob whose bytes are not its digest: one line naming the blob', async () => {
    const img = image();
    const members = img.members.map((m) => (m.data !== undefined && Buffer.from(m.data).equals(img.layer) ? { ...m, data: Buffer.from(img.layer).fill(0x41, 0, 3) } : m));
    const err = await caught(readAll(await tarOf('baddigest.tar', members)));
    expect(err.message).toMatch(new RegExp(`blob ${sha256Of(img.layer)}: content has digest sha256:`));
  });

  it('a member shorter than its descriptor says: named, before a byte is read', async () => {
    const img = image();
    const members = img.members.map((m) => (m.data !== undefined && Buffer.from(m.data).equals(img.layer) ? { ...m, data: img.layer.subarray(1) } : m));
    const err = await caught(readAll(await tarOf('short.tar', members)));
    expect(err.message).toContain(`blob ${sha256Of(img.layer)} has ${img.layer.length - 1} bytes where its descriptor says ${img.layer.length}`);
  });

  it('names that climb out or are absolute are never looked up', async () => {
    const img = image();
    const members = img.members.map((m) => (m.name === 'index.json' ? { ...m, name: '../index.json' } : m.name.startsWith('blobs/') ? { ...m, name: `/${m.name}` } : m));
    const err = await caught(readAll(await tarOf('climb.tar', members)));
    expect(err.message).toMatch(/not an OCI image layout \(no index\.json\)/);
  });

  it('a blob that is a symbolic link (to /etc/passwd) is refused by name', async () => {
    const img = image();
    const layerName = `blobs/sha256/${sha256Of(img.layer).slice(7)}`;
    const members = img.members.map((m): TarMember => (m.name === layerName ? { name: layerName, type: 'symlink', linkname: '/etc/passwd' } : m));
    const err = await caught(readAll(await tarOf('symlink.tar', members)));
    expect(err.message).toContain(`member ${layerName} is a symbolic link, not a regular file`);
  });

  it('a member twice is refused: which one counts would be a guess', async () => {
    const img = image();
    const err = await caught(LayoutSource.open(await tarOf('twice.tar', [...img.members, { name: './index.json', type: 'file', data: '{"schemaVersion":2,"manifests":[]}' }])));
    expect(err.message).toContain('member "index.json" appears twice');
  });

  it('an index.json past MANIFEST_MAX is refused before it is read', async () => {
    const img = image();
    const huge = `{"schemaVersion":2,"manifests":[],"x":"${'a'.repeat(4 << 20)}"}`;
    const err = await caught(LayoutSource.open(await tarOf('huge.tar', img.members.map((m) => (m.name === 'index.json' ? { ...m, data: huge } : m)))));
    expect(err.message).toMatch(/index\.json: \d+ exceeds MANIFEST_MAX/);
  });

  it('an index of two images: one is needed, as upstream', async () => {
    const img = image();
    const two = JSON.stringify({ schemaVersion: 2, manifests: [img.manifestDesc, img.manifestDesc] });
    const src = await LayoutSource.open(await tarOf('two.tar', img.members.map((m) => (m.name === 'index.json' ? { ...m, data: two } : m))));
    try {
      expect((await caught(src.top())).message).toContain('index.json lists 2 images; one is needed');
    } finally {
      await src.close();
    }
  });

  it('a truncated archive: the member that runs past the end is named', async () => {
    const file = await tarOf('cut.tar', image().members);
    const bytes = await readFile(file);
    // Cut inside the second member's data (the layer blob after oci-layout's header and data).
    await writeFile(file, bytes.subarray(0, 512 * 3 + 10));
    const err = await caught(LayoutSource.open(file));
    expect(err.message).toMatch(/member at byte 1024 claims \d+ bytes but the archive ends at byte 1546/);
  });

  it('a header that is not a tar header (bad checksum) is named by its offset', async () => {
    const file = await tarOf('chk.tar', image().members);
    const bytes = await readFile(file);
    bytes[1024 + 10] ^= 0xff;
    await writeFile(file, bytes);
    const err = await caught(LayoutSource.open(file));
    expect(err.message).toMatch(/tar header at byte 1024: .*chksum/);
  });

  it('a compressed archive is refused in one line saying what to do', async () => {
    const file = join(work, 'gz.tar.gz');
    await writeFile(file, gzipSync(await readFile(await tarOf('plain.tar', image().members))));
    const err = await caught(LayoutSource.open(file));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain('gzip-compressed archive');
  });

  it('a layout directory whose blob is a FIFO: refused at once, not waited on', async () => {
    const dir = join(work, 'fifo-layout');
    const img = image();
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    for (const m of img.members) if (m.data !== undefined) await writeFile(join(dir, m.name), m.data);
    const layerPath = join(dir, 'blobs', 'sha256', sha256Of(img.layer).slice(7));
    await rm(layerPath);
    await runOk('mkfifo', [layerPath]);
    const err = await caught(readAll(dir));
    expect(err.message).toContain(`${layerPath}: not a regular file`);
  });
});

describe.skipIf(missing)('convert with OCI-layout archives', () => {
  let reg: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let srcArchive = '';
  let src: SourceImage;
  const nydusRef = () => `${reg.host}/dst/image:nydus`;
  /** The kernel's judge of a converted image in the registry or in an unpacked archive. */
  const judge = (ctx: unknown, at: ImageAt, ref: string, name: string) =>
    judgeNydusImage(ctx as SkipContext, { at, ref, rootfs: src.rootfs, scratch: join(work, `judge-${name}`) });
  /** An archive unpacked by GNU tar: the OCI layout it holds. */
  const unpacked = async (archive: string, dir: string): Promise<string> => {
    await mkdir(dir);
    await runOk('tar', ['-xf', archive, '-C', dir]);
    return dir;
  };

  beforeAll(async () => {
    env = await anonymousDockerEnv(work);
    reg = await startRegistry();
    src = await buildSourceImage(join(work, 'src'), SAMPLE_LAYERS);
    await writeOciLayout(join(work, 'src-layout'), 'v1', src.tars.map((t) => compressLayer(t, 'gzip')));
    await pushLayout(join(work, 'src-layout'), 'v1', `${reg.host}/src/image:v1`);
    // The archive as users make one: skopeo from the registry.
    srcArchive = join(work, 'skopeo-src.tar');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/src/image:v1`, `oci-archive:${srcArchive}`]);
    // The reference: the same image converted registry → registry.
    await convert({ source: `${reg.host}/src/image:v1`, target: nydusRef(), plainHttp: true, env, workDir: join(work, 'w0') });
  }, 300_000);

  afterAll(async () => {
    await reg?.stop();
  });

  const layersOf = async (ref: string) => (JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', ref])).toString()) as { layers: Descriptor[]; annotations: Record<string, string> });

  it('--source-archive: the archive skopeo wrote converts to the same blobs as the registry image, which mount as the umoci rootfs', async (ctx) => {
    // The name given is not in the registry: only the archive holds the image.
    const r = await convert({
      source: `${reg.host}/only/in-archive:v1`, sourceArchive: srcArchive, target: `${reg.host}/dst/image:from-archive`,
      plainHttp: true, env, workDir: join(work, 'w1'),
    });
    const fromArchive = await layersOf(`docker://${reg.host}/dst/image:from-archive`);
    const fromRegistry = await layersOf(`docker://${nydusRef()}`);
    expect(fromArchive.layers).toEqual(fromRegistry.layers);
    expect(fromArchive.annotations['containerd.io/snapshot/nydus-source-reference']).toBe(`${reg.host}/only/in-archive:v1`);
    expect(r.manifests[0]!.blobs).toHaveLength(SAMPLE_LAYERS.length);
    expect(await judge(ctx, { registry: reg.host, repo: 'dst/image' }, 'from-archive', 'from-archive')).toEqual([]);
  }, 120_000);

  it('--target-archive: skopeo inspects the Nydus image in it, nydus-image check verifies every chunk of its blobs, and it mounts as the umoci rootfs', async (ctx) => {
    const out = join(work, 'nydus.tar');
    const r = await convert({
      source: `${reg.host}/src/image:v1`, target: `${reg.host}/dst/image:archived`, targetArchive: out,
      plainHttp: true, env, workDir: join(work, 'w2'),
    });
    const m = await layersOf(`oci-archive:${out}`);
    expect(m.layers).toEqual((await layersOf(`docker://${nydusRef()}`)).layers);
    expect(m.layers.at(-1)!.annotations?.['containerd.io/snapshot/nydus-bootstrap']).toBe('true');
    expect(m.layers.slice(0, -1).every((l) => l.mediaType === MEDIA.NYDUS_BLOB)).toBe(true);
    // Nothing went to the registry: the archive is the target.
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      expect(await client.headManifest('dst/image', 'archived')).toBeUndefined();
    } finally {
      await client.close();
    }
    const x = await unpacked(out, join(work, 'nydus-x'));
    const index = JSON.parse(await readFile(join(x, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    expect(index.manifests).toEqual([expect.objectContaining({ digest: r.digest, annotations: { 'org.opencontainers.image.ref.name': 'archived', 'io.containerd.image.name': `${reg.host}/dst/image:archived` } })]);
    const blobs = join(x, 'blobs', 'sha256');
    const boot = join(x, 'boot');
    await mkdir(boot);
    await runOk('tar', ['-xzf', join(blobs, m.layers.at(-1)!.digest.slice(7)), '-C', boot]);
    await nydusImageOk(['check', '-B', join(boot, 'image', 'image.boot'), '-D', blobs]);
    expect(await judge(ctx, { layout: x }, 'archived', 'archived')).toEqual([]);
  }, 120_000);

  it('--source-archive and --target-archive together: no registry is asked for anything; the archived image mounts as the umoci rootfs', async (ctx) => {
    const out = join(work, 'offline.tar');
    await convert({ source: 'nowhere.invalid/src/image:v1', sourceArchive: srcArchive, target: 'nowhere.invalid/dst:v1', targetArchive: out, env, workDir: join(work, 'w3') });
    expect((await layersOf(`oci-archive:${out}`)).layers).toEqual((await layersOf(`docker://${nydusRef()}`)).layers);
    expect(await judge(ctx, { layout: await unpacked(out, join(work, 'offline-x')) }, 'v1', 'offline')).toEqual([]);
  }, 120_000);

  it('the CLI: --source-archive/--target-archive, and a missing archive is one line', async () => {
    const bin = join(REPO, 'bin', 'nydusify.js');
    const out = join(work, 'cli.tar');
    const ok = await run(process.execPath, [bin, 'convert', '--source', 'x.invalid/a:v1', '--source-archive', srcArchive, '--target', 'x.invalid/b:v1', '--target-archive', out, '--work-dir', join(work, 'w4')], { env });
    expect(ok.code, ok.stderr.toString()).toBe(0);
    expect((await layersOf(`oci-archive:${out}`)).layers).toHaveLength(SAMPLE_LAYERS.length + 1);
    const bad = await run(process.execPath, [bin, 'convert', '--source', 'x.invalid/a:v1', '--source-archive', join(work, 'absent.tar'), '--target', 'x.invalid/b:v1', '--target-archive', join(work, 'never.tar'), '--work-dir', join(work, 'w4')], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr.toString().trim().split('\n')).toHaveLength(1);
    expect(bad.stderr.toString()).toContain('absent.tar: no such file or directory');
    await expect(stat(join(work, 'never.tar'))).rejects.toThrow();
  }, 120_000);

  it('copy from a hostile archive pushes nothing: the bad blob is named, no tag appears', async () => {
    const img = image();
    const members = img.members.map((m) => (m.data !== undefined && Buffer.from(m.data).equals(img.layer) ? { ...m, data: Buffer.from(img.layer).fill(0x42, 5, 6) } : m));
    const file = await tarOf('bad-for-copy.tar', members);
    const err = await copy({ source: `file://${file}`, target: `${reg.host}/hostile:v1`, plainHttp: true, env }).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(NydusError);
    expect(err!.message).toContain(sha256Of(img.layer));
    const client = new RegistryClient(reg.host, { plainHttp: true, credentials: null });
    try {
      expect(await client.headManifest('hostile', 'v1')).toBeUndefined();
      expect(await client.headBlob('hostile', sha256Of(img.layer) as Digest)).toBeUndefined();
    } finally {
      await client.close();
    }
  }, 60_000);
});
