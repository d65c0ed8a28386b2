// Image layers made in code and judged from outside: layer directories with exact attributes,
// GNU tar of them (or Python tarfile for tars no archiver would write), and OCI image layouts
// written by hand (oci-layout, index.json, manifest, config, layer blobs) for umoci to unpack as
// the reference for the overlay rules a layered nydus image must reproduce.
import { createHash } from 'node:crypto';
import { chmod, lchown, link, lutimes, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { xattr } from './native.js';
import { hasTool, runOk } from './tools.js';
import { mknod } from './tree.js';

export const MEDIA_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

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

/**
 * Writes an OCI image layout at `layout` (created) holding one linux/amd64 image tagged `tag`
 * whose layers are given lower to upper. Returns the manifest's descriptor.
 */
export async function writeOciLayout(layout: string, tag: string, layers: readonly OciLayer[]): Promise<Descriptor> {
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const layerDescs: Descriptor[] = [];
  for (const l of layers) layerDescs.push(await putBlob(layout, l.data, l.mediaType ?? MEDIA_LAYER_TAR));
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l, i) => l.diffId ?? layerDescs[i]!.digest) },
    history: layers.map((_, i) => ({ created_by: `test layer ${i}` })),
  };
  const configDesc = await putBlob(layout, Buffer.from(JSON.stringify(config)), MEDIA_CONFIG);
  const manifest = { schemaVersion: 2, mediaType: MEDIA_MANIFEST, config: configDesc, layers: layerDescs };
  const manifestDesc = await putBlob(layout, Buffer.from(JSON.stringify(manifest)), MEDIA_MANIFEST);
  const tagged: Descriptor = { ...manifestDesc, annotations: { 'org.opencontainers.image.ref.name': tag } };
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_INDEX, manifests: [tagged] }));
  return tagged;
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
