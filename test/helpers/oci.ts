// Image layers made in code and judged from outside: layer directories with exact attributes,
// GNU tar of them (or Python tarfile for tars no archiver would write), and OCI image layouts
// written by hand (oci-layout, index.json, manifests, configs, layer blobs; one image or a
// multi-platform index) for umoci to unpack as the reference for the overlay rules a layered
// nydus image must reproduce. SAMPLE_LAYERS is the multi-layer image the OCI tests share; skopeo
// pushes layouts (pushLayout), our client the images a test shapes itself (pushImage). The judge
// of a converted image (judgeNydusImage): its manifest and blobs read back from a registry (plain
// HTTP, not our client) or a layout, the bootstrap layer's image.boot exported by
// `nydus-image export --block`, mounted by the kernel and compared with umoci's rootfs.
import { createHash } from 'node:crypto';
import { chmod, lchown, link, lutimes, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import type { RegistryClient } from '../../src/oci/registry.js';
import { nydusImageOk } from '../cli/cli-runner.js';
import { compareTrees } from './compare.js';
import { kernelSupport, mountErofs, skipLoudly, type SkipContext } from './kernel.js';
import { xattr } from './native.js';
import { hasTool, runOk } from './tools.js';
import { mknod, prng } from './tree.js';

export const MEDIA_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_LAYER_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export const sha256Hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function putBlob(layout: string, data: Buffer, mediaType: string): Promise<Descriptor> {
  const hex = sha256Hex(data);
  await writeFile(join(layout, 'blobs', 'sha256', hex), data);
  return { mediaType, digest: `sha256:${hex}`, size: data.length };
}

export interface OciLayer {
  /** The layer blob as stored (a tar, or a tar.gz with MEDIA_LAYER_TAR_GZIP). */
  data: Buffer;
  /** Defaults to MEDIA_LAYER_TAR. */
  mediaType?: string;
  /** The uncompressed tar's sha256 for the config's diff_ids; defaults to the blob's own digest. */
  diffId?: string;
}

export interface Platform {
  os: string;
  architecture: string;
}

/** One image written into a layout: its manifest's descriptor (with the platform) and what it holds. */
export interface WrittenImage {
  manifest: Descriptor & { platform: Platform };
  layers: Descriptor[];
  diffIds: string[];
  history: Array<{ created_by: string }>;
}

async function startLayout(layout: string): Promise<void> {
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

/** Writes one image's blobs (layers, config, manifest) into an existing layout; index.json is the caller's. */
async function writeImage(layout: string, layers: readonly OciLayer[], platform: Platform): Promise<WrittenImage> {
  const layerDescs: Descriptor[] = [];
  for (const l of layers) layerDescs.push(await putBlob(layout, l.data, l.mediaType ?? MEDIA_LAYER_TAR));
  const diffIds = layers.map((l, i) => l.diffId ?? layerDescs[i]!.digest);
  const history = layers.map((_, i) => ({ created_by: `test layer ${i}` }));
  const config = { architecture: platform.architecture, os: platform.os, config: {}, rootfs: { type: 'layers', diff_ids: diffIds }, history };
  const configDesc = await putBlob(layout, Buffer.from(JSON.stringify(config)), MEDIA_CONFIG);
  const manifest = { schemaVersion: 2, mediaType: MEDIA_MANIFEST, config: configDesc, layers: layerDescs };
  const manifestDesc = await putBlob(layout, Buffer.from(JSON.stringify(manifest)), MEDIA_MANIFEST);
  return { manifest: { ...manifestDesc, platform }, layers: layerDescs, diffIds, history };
}

const refName = (tag: string) => ({ 'org.opencontainers.image.ref.name': tag });

/**
 * Writes an OCI image layout at `layout` (created) holding one linux/amd64 image tagged `tag`
 * whose layers are given lower to upper. Returns the manifest's descriptor.
 */
export async function writeOciLayout(layout: string, tag: string, layers: readonly OciLayer[]): Promise<Descriptor> {
  await startLayout(layout);
  const { manifest } = await writeImage(layout, layers, { os: 'linux', architecture: 'amd64' });
  const tagged: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, annotations: refName(tag) };
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_INDEX, manifests: [tagged] }));
  return tagged;
}

/**
 * Writes an OCI image layout at `layout` (created) whose tag `tag` names an image index of the
 * given images, one per platform, in that order. Returns what each image holds.
 */
export async function writeOciIndexLayout(layout: string, tag: string, images: ReadonlyArray<{ platform: Platform; layers: readonly OciLayer[] }>): Promise<WrittenImage[]> {
  await startLayout(layout);
  const written: WrittenImage[] = [];
  for (const img of images) written.push(await writeImage(layout, img.layers, img.platform));
  const index = { schemaVersion: 2, mediaType: MEDIA_INDEX, manifests: written.map((w) => w.manifest) };
  const indexDesc = await putBlob(layout, Buffer.from(JSON.stringify(index)), MEDIA_INDEX);
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_INDEX, manifests: [{ ...indexDesc, annotations: refName(tag) }] }));
  return written;
}

/** `skopeo copy` of a layout's tag (an image or a whole index) to `docker://REF` on a plain-HTTP registry, digests kept. */
export async function pushLayout(layout: string, tag: string, ref: string): Promise<void> {
  await runOk('skopeo', ['copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${ref}`], { timeoutMs: 120_000 });
}

export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** A layer tar as a registry would store it compressed `how`, its diff_id kept. */
export function compressLayer(tar: Buffer, how: LayerCompression): OciLayer {
  const diffId = `sha256:${sha256Hex(tar)}`;
  if (how === 'gzip') return { data: gzipSync(tar), mediaType: MEDIA_LAYER_TAR_GZIP, diffId };
  if (how === 'zstd') return { data: Buffer.from(zstdCompress(tar)), mediaType: MEDIA_LAYER_TAR_ZSTD, diffId };
  return { data: tar, mediaType: MEDIA_LAYER_TAR, diffId };
}

/** Why umoci cannot be the judge here, or undefined when it can. */
export function umociMissing(): string | undefined {
  if (!hasTool('umoci')) return 'umoci is not on PATH';
  if (process.getuid?.() !== 0) return 'umoci unpack without --rootless needs root';
  return undefined;
}

/**
 * `umoci unpack --image LAYOUT:TAG BUNDLE` as root (owners, devices and trusted.* xattrs kept);
 * returns the bundle's rootfs directory. BUNDLE must not exist yet.
 */
export async function umociUnpack(layout: string, tag: string, bundle: string): Promise<string> {
  await runOk('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle], { timeoutMs: 120_000 });
  return join(bundle, 'rootfs');
}

/** One entry of a layer directory, made by buildLayerDir; every field is applied exactly. */
export type LayerEntry =
  | ({ kind: 'dir' } & EntryAttrs)
  | ({ kind: 'file'; data: Buffer | string } & EntryAttrs)
  | ({ kind: 'symlink'; target: string } & EntryAttrs)
  /** Another name for an earlier 'file' entry (the path given, relative to the layer root). */
  | { kind: 'hardlink'; path: string; to: string }
  | ({ kind: 'char' | 'block'; major: number; minor: number } & EntryAttrs)
  | ({ kind: 'fifo' } & EntryAttrs);

export interface EntryAttrs {
  /** Relative to the layer root; '.' is the root itself. */
  path: string;
  /** Permission bits (setuid/setgid/sticky included); defaults 0755 for dirs, 0644 otherwise. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Whole seconds, so tar headers, the kernel and upstream's nsec-less inodes agree. */
  mtime: number;
  /** name → value; trusted.* needs root. */
  xattrs?: Record<string, string>;
}

/**
 * Makes a layer directory (created; must not exist) with exactly the given entries, parents
 * listed before children. Mtimes are set last, deepest first, so adding children does not move them.
 */
export async function buildLayerDir(root: string, entries: readonly LayerEntry[]): Promise<void> {
  await mkdir(root);
  const at = (p: string) => (p === '.' ? root : join(root, p));
  for (const e of entries) {
    if (e.kind === 'hardlink') {
      await link(at(e.to), at(e.path));
      continue;
    }
    const p = at(e.path);
    const mode = e.mode ?? (e.kind === 'dir' ? 0o755 : 0o644);
    if (e.kind === 'dir') {
      if (e.path !== '.') await mkdir(p);
    } else if (e.kind === 'file') await writeFile(p, e.data);
    else if (e.kind === 'symlink') await symlink(e.target, p);
    else if (e.kind === 'fifo') await mknod(p, 'fifo', mode);
    else await mknod(p, e.kind, mode, e.major, e.minor);
    await lchown(p, e.uid ?? 0, e.gid ?? 0);
    // After chown, which clears setuid/setgid; symlinks have no mode of their own.
    if (e.kind !== 'symlink') await chmod(p, mode);
    for (const [name, value] of Object.entries(e.xattrs ?? {})) xattr.lset(Buffer.from(p), Buffer.from(name), Buffer.from(value));
  }
  for (const e of [...entries].reverse()) {
    if (e.kind === 'hardlink') continue;
    await lutimes(at(e.path), e.mtime, e.mtime);
  }
}

/** GNU tar of a layer directory as image builders write it: `./` first, names sorted, xattrs kept. */
export async function tarLayer(dir: string, out: string): Promise<Buffer> {
  await runOk('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--sort=name', '-C', dir, '-cf', out, '.']);
  return readFile(out);
}

/** One member for writeTar: exactly what goes into the header, nothing normalised. */
export interface TarMember {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  data?: Buffer | string;
  linkname?: string;
  /** Defaults 0755 for dirs, 0644 otherwise. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Defaults to 1600000000. */
  mtime?: number;
}

const WRITE_TAR_PY = `import io, json, sys, tarfile
spec = json.load(sys.stdin)
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE}
with tarfile.open(spec['out'], 'w', format=tarfile.GNU_FORMAT) as t:
    for m in spec['members']:
        ti = tarfile.TarInfo(m['name'])
        ti.type = types[m['type']]
        ti.mode = m['mode']
        ti.uid, ti.gid, ti.mtime = m['uid'], m['gid'], m['mtime']
        ti.linkname = m.get('linkname', '')
        data = bytes.fromhex(m['data']) if 'data' in m else None
        if data is not None:
            ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
`;

/**
 * Writes a GNU-format tar with Python's tarfile, member by member as given: names are not
 * cleaned, so `../x`, `/abs` and links to nowhere go in verbatim.
 */
export async function writeTar(out: string, members: readonly TarMember[]): Promise<Buffer> {
  const spec = {
    out,
    members: members.map((m) => ({
      name: m.name,
      type: m.type,
      mode: m.mode ?? (m.type === 'dir' ? 0o755 : 0o644),
      uid: m.uid ?? 0,
      gid: m.gid ?? 0,
      mtime: m.mtime ?? 1_600_000_000,
      ...(m.linkname !== undefined ? { linkname: m.linkname } : {}),
      ...(m.data !== undefined ? { data: Buffer.from(m.data).toString('hex') } : {}),
    })),
  };
  await runOk('python3', ['-c', WRITE_TAR_PY], { input: JSON.stringify(spec) });
  return readFile(out);
}

const T0 = 1_600_000_000;
const T1 = 1_650_000_000;
const T2 = 1_700_000_000;
const MiB = 1024 * 1024;

/**
 * The multi-layer image the OCI tests convert, lower → upper: whiteouts of a file and a
 * directory, an opaque directory, hard links (one name replaced above), xattrs (user.* and
 * trusted.*) on files and directories, a symlink loop, 0-byte files, multi-chunk files, two files
 * of one size, and a last
 * layer of metadata only (its blob has no chunks but is still one of the manifest's layers).
 */
export const SAMPLE_LAYERS: readonly (readonly LayerEntry[])[] = [
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
    // Two files of one size and other bytes (check's test swaps their chunks).
    { kind: 'dir', path: 'same', mtime: T2 },
    { kind: 'file', path: 'same/one', data: 'one: 1111\n', mtime: T2 },
    { kind: 'file', path: 'same/two', data: 'two: 2222\n', mtime: T2 },
    { kind: 'dir', path: 'x', mtime: T2, xattrs: { 'user.dir': 'd2' } },
    { kind: 'file', path: 'x/xf', data: 'xattr file v2\n', mtime: T2, xattrs: { 'user.foo': 'baz', 'trusted.t': 'tv2' } },
  ],
  [
    { kind: 'dir', path: '.', mode: 0o751, mtime: T2 },
    { kind: 'file', path: '.wh.empty', data: '', mtime: T2 },
  ],
];

/** A layer on top of SAMPLE_LAYERS that tells one platform's image from another's. */
export function platformLayer(architecture: string): LayerEntry[] {
  return [
    { kind: 'dir', path: '.', mode: 0o751, mtime: T2 },
    { kind: 'file', path: 'arch', data: `${architecture}\n`, mtime: T2 },
    { kind: 'dir', path: 'bin', mtime: T0 },
    { kind: 'file', path: 'bin/tool', data: prng(10 + [...architecture].reduce((n, c) => n + c.charCodeAt(0), 0), 70_000), mode: 0o755, mtime: T2 },
  ];
}

/**
 * Builds each layer's directory under `dir` (created; must not exist), tars it with GNU tar as
 * `dir`/layerN.tar and removes the directory. Returns the tars, lower → upper.
 */
export async function buildLayerTars(dir: string, layers: readonly (readonly LayerEntry[])[]): Promise<Buffer[]> {
  await mkdir(dir);
  const tars: Buffer[] = [];
  for (const [i, entries] of layers.entries()) {
    await buildLayerDir(join(dir, `layer${i}`), entries);
    tars.push(await tarLayer(join(dir, `layer${i}`), join(dir, `layer${i}.tar`)));
    await rm(join(dir, `layer${i}`), { recursive: true });
  }
  return tars;
}

/** Layers built as GNU tars and the rootfs umoci unpacks from them: the source and its reference. */
export interface SourceImage {
  /** The uncompressed layer tars, lower → upper. */
  tars: Buffer[];
  /** umoci's rootfs of those tars applied in order: what a converted image must mount as. */
  rootfs: string;
}

/**
 * buildLayerTars, then the tars unpacked by umoci (as root) into `dir`/bundle. Push the tars with
 * compressLayer and writeOciLayout + pushLayout (or pushImage).
 */
export async function buildSourceImage(dir: string, layers: readonly (readonly LayerEntry[])[]): Promise<SourceImage> {
  const tars = await buildLayerTars(dir, layers);
  // umoci judges from plain tars (the same bytes the compressed layers hold).
  await writeOciLayout(join(dir, 'ref'), 'v1', tars.map((data) => ({ data })));
  const rootfs = await umociUnpack(join(dir, 'ref'), 'v1', join(dir, 'bundle'));
  return { tars, rootfs };
}

/** What pushImage pushed: the manifest (its bytes, digest, size) and its layers' descriptors. */
export interface PushedImage {
  digest: Digest;
  size: number;
  bytes: Buffer;
  layers: Array<{ mediaType: string; digest: Digest; size: number }>;
  diffIds: string[];
}

export interface PushImageOptions {
  /** Default linux/amd64. */
  platform?: Platform;
  /** The config's `config` (default {}). */
  config?: Record<string, unknown>;
  /** The config's history (default none). */
  history?: unknown[];
}

/**
 * Pushes an OCI image through our registry client, for images a test shapes itself (a layer that
 * lies about its compression, an index built entry by entry): each layer, the config, then the
 * manifest tagged `tag` (by its digest when undefined). skopeo (pushLayout) pushes the rest.
 */
export async function pushImage(client: RegistryClient, repo: string, tag: string | undefined, layers: readonly OciLayer[], o: PushImageOptions = {}): Promise<PushedImage> {
  const push = async (data: Buffer) => {
    const r = await client.pushBlob(repo, () => Readable.from([data]), { digest: sha256Of(data), size: data.length });
    return { digest: r.digest, size: r.size };
  };
  const descs: PushedImage['layers'] = [];
  for (const l of layers) descs.push({ mediaType: l.mediaType ?? MEDIA_LAYER_TAR, ...(await push(l.data)) });
  const diffIds = layers.map((l, i) => l.diffId ?? descs[i]!.digest);
  const platform = o.platform ?? { os: 'linux', architecture: 'amd64' };
  const config = await push(Buffer.from(JSON.stringify({
    architecture: platform.architecture, os: platform.os, config: o.config ?? {}, rootfs: { type: 'layers', diff_ids: diffIds }, ...(o.history ? { history: o.history } : {}),
  })));
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_MANIFEST, config: { mediaType: MEDIA_CONFIG, ...config }, layers: descs }));
  const digest = await client.putManifest(repo, tag ?? sha256Of(bytes), bytes, MEDIA_MANIFEST);
  return { digest, size: bytes.length, bytes, layers: descs, diffIds };
}

/** One platform of a pushed multi-platform source: umoci's rootfs and what its manifest holds. */
export interface PlatformImage extends SourceImage {
  image: WrittenImage;
}

/**
 * A linux index of SAMPLE_LAYERS plus platformLayer(arch) for each arch, gzip layers, built under
 * `dir` (created; must not exist), written as an OCI layout and pushed by skopeo to `ref` with its
 * digests kept. Returns each platform's rootfs and manifest, by arch.
 */
export async function pushPlatformIndex(dir: string, ref: string, arches: readonly string[]): Promise<Record<string, PlatformImage>> {
  await mkdir(dir);
  const built: SourceImage[] = [];
  for (const arch of arches) built.push(await buildSourceImage(join(dir, arch), [...SAMPLE_LAYERS, platformLayer(arch)]));
  const images = await writeOciIndexLayout(join(dir, 'layout'), 'v1', arches.map((architecture, i) => ({
    platform: { os: 'linux', architecture }, layers: built[i]!.tars.map((t) => compressLayer(t, 'gzip')),
  })));
  await pushLayout(join(dir, 'layout'), 'v1', ref);
  return Object.fromEntries(arches.map((a, i) => [a, { ...built[i]!, image: images[i]! }]));
}

/** Where the judge reads a converted image: a plain-HTTP registry's repository, or an OCI layout directory. */
export type ImageAt = { registry: string; repo: string } | { layout: string };

const NYDUS_ARTIFACT = 'application/vnd.nydus.image.manifest.v1+json';
const NYDUS_OS_FEATURE = 'nydus.remoteimage.v1';
const ACCEPT = [MEDIA_MANIFEST, MEDIA_INDEX, 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');

interface JudgedManifest {
  mediaType?: string;
  manifests?: Array<Descriptor & { artifactType?: string; platform?: Platform & { 'os.features'?: string[] } }>;
  layers?: Descriptor[];
}

function verified(data: Buffer, digest: string, what: string): Buffer {
  const got = `sha256:${sha256Hex(data)}`;
  if (got !== digest) throw new Error(`${what}: content has digest ${got}, not ${digest}`);
  return data;
}

/** Manifest bytes by tag or digest, and blobs by digest (verified), read without our registry client. */
async function fetchFrom(at: ImageAt, kind: 'manifests' | 'blobs', ref: string): Promise<Buffer> {
  if ('layout' in at) {
    let digest = ref;
    if (!ref.startsWith('sha256:')) {
      const index = JSON.parse(await readFile(join(at.layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
      const tagged = index.manifests.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === ref);
      if (tagged.length !== 1) throw new Error(`${at.layout}: ${tagged.length} entries tagged ${ref} in index.json`);
      digest = tagged[0]!.digest;
    }
    return verified(await readFile(join(at.layout, 'blobs', 'sha256', digest.slice(7))), digest, `${at.layout} ${digest}`);
  }
  const url = `http://${at.registry}/v2/${at.repo}/${kind}/${ref}`;
  const res = await fetch(url, { headers: kind === 'manifests' ? { accept: ACCEPT } : {} });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  const data = Buffer.from(await res.arrayBuffer());
  return ref.startsWith('sha256:') ? verified(data, ref, url) : data;
}

export interface JudgeOptions {
  /** Where the image is. */
  at: ImageAt;
  /** Tag or digest of a Nydus manifest, or of an index holding Nydus manifests (then `platform` picks one). */
  ref: string;
  /** `os/arch` of the Nydus entry to judge when `ref` names an index. */
  platform?: string;
  /** umoci's rootfs of the source image (buildSourceImage). */
  rootfs: string;
  /** Scratch directory (created; must not exist); removed afterwards. */
  scratch: string;
  /**
   * Blobs the bootstrap names that the manifest does not list, fetched by digest from the same
   * place (a zran image's original gzip layers, kept in the target repository).
   */
  extraBlobs?: readonly string[];
}

/**
 * The judge of a converted image, from outside: the Nydus manifest (picked from an index by
 * platform: the entry with artifactType application/vnd.nydus.image.manifest.v1+json or os.features
 * nydus.remoteimage.v1), every layer (and extra blob) pulled back and checked against its digest,
 * the last layer (annotated nydus-bootstrap) untarred for image/image.boot, `nydus-image export
 * --block` over the blobs, the disk mounted by the kernel and compared with `rootfs` field by
 * field. Returns the differences (none when the image is right). Skips the test loudly where the
 * kernel cannot mount.
 */
export async function judgeNydusImage(ctx: SkipContext, o: JudgeOptions): Promise<string[]> {
  const k = kernelSupport();
  if (!k.ok) skipLoudly(ctx, k.why!);
  let manifest = JSON.parse((await fetchFrom(o.at, 'manifests', o.ref)).toString()) as JudgedManifest;
  if (manifest.manifests) {
    const [os, architecture] = (o.platform ?? '').split('/');
    const nydus = manifest.manifests.filter((d) => d.platform?.os === os && d.platform.architecture === architecture
      && (d.artifactType === NYDUS_ARTIFACT || (d.platform['os.features'] ?? []).includes(NYDUS_OS_FEATURE)));
    if (nydus.length !== 1) throw new Error(`${o.ref} is an index with ${nydus.length} Nydus entries for platform ${o.platform ?? '(none given)'}`);
    manifest = JSON.parse((await fetchFrom(o.at, 'manifests', nydus[0]!.digest)).toString()) as JudgedManifest;
  }
  const layers = manifest.layers ?? [];
  const boot = layers.at(-1);
  if (boot?.annotations?.['containerd.io/snapshot/nydus-bootstrap'] !== 'true') throw new Error(`${o.ref}: the last layer is not a Nydus bootstrap layer`);
  const blobs = join(o.scratch, 'blobs');
  const untar = join(o.scratch, 'boot');
  await mkdir(blobs, { recursive: true });
  await mkdir(untar);
  try {
    for (const l of layers) {
      const data = await fetchFrom(o.at, 'blobs', l.digest);
      if (data.length !== l.size) throw new Error(`${o.ref}: layer ${l.digest} has ${data.length} bytes, its descriptor says ${l.size}`);
      await writeFile(join(blobs, l.digest.slice(7)), data);
    }
    for (const d of o.extraBlobs ?? []) await writeFile(join(blobs, d.slice(7)), await fetchFrom(o.at, 'blobs', d));
    await runOk('tar', ['-xzf', join(blobs, boot.digest.slice(7)), '-C', untar]);
    const disk = join(o.scratch, 'image.disk');
    await nydusImageOk(['export', '--block', '-B', join(untar, 'image', 'image.boot'), '-D', blobs, '-O', disk]);
    const m = await mountErofs(disk, { loop: true });
    try {
      return await compareTrees(o.rootfs, m.dir);
    } finally {
      await m.unmount();
    }
  } finally {
    await rm(o.scratch, { recursive: true, force: true });
  }
}
