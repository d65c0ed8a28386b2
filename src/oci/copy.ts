// `nydusify copy` (spec oci-and-converters.md §3.4): an image, OCI or Nydus alike, from a
// registry or an OCI-layout archive (`file://PATH`) to a registry or an archive. Manifests and
// blobs are copied byte for byte; each blob streams from the source into the target (a
// cross-repository mount when both are repositories of one registry, nothing when the target has
// it), never staged on disk. Manifests go last, once every blob they name is in the target, and
// the index (or the manifest) under the tag after them.
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import PQueue from 'p-queue';
import { NydusError } from '../errors.js';
import { quote, type Digest } from './digest.js';
import { LayoutSink, LayoutSource, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME } from './layout.js';
import type { Descriptor, Fetched, ImageIndex, ImageManifest } from './manifest.js';
import { formatPlatform, hostPlatform, parsePlatforms, platformMatches, type PlatformSpec } from './platform.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import { RegistryClient } from './registry.js';
import { RegistrySink, RegistrySource, type ImageSink, type ImageSource } from './store.js';

/** Blobs copied at once by default: containerd's limit for pulls and pushes, which upstream uses. */
export const COPY_CONCURRENCY = 5;

const FILE = 'file://';

export interface CopyOptions {
  /** An image reference, or file://PATH of an OCI-layout archive (a plain tar) or layout directory. */
  source: string;
  /** An image reference, or file://PATH: a new tar archive, or an existing empty directory for a layout directory. */
  target: string;
  sourceInsecure?: boolean;
  targetInsecure?: boolean;
  /** Speak HTTP to both registries. */
  plainHttp?: boolean;
  /** os/arch[/variant], comma list; default linux/<host arch>. Only used when the source is an index. */
  platform?: string;
  /** Copy the whole index with every platform. */
  allPlatforms?: boolean;
  /** Send each blob in PATCHes of this many bytes (each held in memory); 0 or undefined: one streamed PATCH. */
  pushChunkSize?: number;
  /** Upstream's work directory; copy stages nothing, so nothing is made there. */
  workDir?: string;
  /** Blobs copied at once (default 5). */
  concurrency?: number;
  /** Environment for DOCKER_CONFIG and credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
  onProgress?: (event: CopyEvent) => void;
}

export interface CopyEvent {
  /** skipped: the target had it; mounted: from another repository of the target registry. */
  stage: 'skipped' | 'mounted' | 'copied' | 'manifest';
  digest: Digest;
  size: number;
}

export interface CopyResult {
  /** The target as written: a reference, or file://PATH. */
  target: string;
  /** What the tag points at: the manifest, or the index. */
  digest: Digest;
  mediaType: string;
  /** The manifests copied ('' platform for a single-manifest source). */
  manifests: Array<{ platform: string; digest: Digest; mediaType: string; size: number }>;
  blobs: { copied: number; mounted: number; skipped: number; bytesCopied: number };
}

type Endpoint = { kind: 'file'; path: string } | { kind: 'registry'; ref: Reference };

function endpoint(s: string, flag: string): Endpoint {
  if (s.startsWith(FILE)) {
    const p = s.slice(FILE.length);
    if (p.length === 0) throw new NydusError('USAGE', `--${flag} ${quote(s)} names no file`);
    return { kind: 'file', path: path.resolve(p) };
  }
  return { kind: 'registry', ref: parseReference(s) };
}

interface Chosen {
  desc: Descriptor;
  /** The manifest's exact bytes, as the source holds them. */
  bytes: Buffer;
  manifest: ImageManifest;
  platform: string;
}

/** What goes to the target: the manifests, and the index to put under the tag (or none: the one manifest is). */
interface Plan {
  manifests: Chosen[];
  index?: { bytes: Buffer; mediaType: string };
}

async function plan(source: ImageSource, top: Fetched, o: CopyOptions): Promise<Plan> {
  if (top.kind === 'manifest') {
    return { manifests: [{ desc: { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length }, bytes: top.bytes, manifest: top.manifest, platform: '' }] };
  }
  const entries = top.index.manifests;
  let chosen: Descriptor[];
  if (o.allPlatforms) chosen = entries;
  else {
    const wanted: PlatformSpec[] = o.platform !== undefined ? parsePlatforms(o.platform) : [hostPlatform()];
    chosen = entries.filter((m) => wanted.some((w) => platformMatches(m.platform, w)));
    if (chosen.length === 0) {
      const have = entries.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ');
      throw new NydusError('SOURCE', `${source.name}: the index has no manifest for ${wanted.map(formatPlatform).join(', ')} (it has ${have || 'none'})`);
    }
  }
  const manifests: Chosen[] = [];
  for (const d of chosen) {
    const f = await source.getManifest(d.digest);
    if (f.kind !== 'manifest') throw new NydusError('UNSUPPORTED', `${source.name}: index entry ${d.digest} is itself an index; nested indexes are not supported`);
    if (f.bytes.length !== d.size) throw new NydusError('SOURCE', `${source.name}: index entry ${d.digest} says ${d.size} bytes, the manifest has ${f.bytes.length}`);
    manifests.push({ desc: { ...d, mediaType: f.mediaType }, bytes: f.bytes, manifest: f.manifest, platform: d.platform ? formatPlatform(d.platform) : '' });
  }
  // The whole index byte for byte; a part of it as an index of those entries; one entry alone as
  // its manifest under the tag (upstream pushes an index only for more than one manifest).
  if (o.allPlatforms || (chosen.length === entries.length && chosen.length > 1)) return { manifests, index: { bytes: top.bytes, mediaType: top.mediaType } };
  if (chosen.length > 1) {
    const index: ImageIndex = { ...top.index, manifests: chosen };
    return { manifests, index: { bytes: Buffer.from(JSON.stringify(index)), mediaType: top.mediaType } };
  }
  return { manifests };
}

/** Every blob the manifests name (configs and layers), once each, with its size. */
function blobsOf(p: Plan, where: string): Map<Digest, number> {
  const blobs = new Map<Digest, number>();
  for (const { manifest } of p.manifests) {
    for (const d of [manifest.config, ...manifest.layers]) {
      const had = blobs.get(d.digest);
      if (had !== undefined && had !== d.size) throw new NydusError('SOURCE', `${where}: blob ${d.digest} is listed with ${had} and with ${d.size} bytes`);
      blobs.set(d.digest, d.size);
    }
  }
  return blobs;
}

/** Copies an image; see CopyOptions. */
export async function copy(o: CopyOptions): Promise<CopyResult> {
  const src = endpoint(o.source, 'source');
  const dst = endpoint(o.target, 'target');
  if (o.allPlatforms && o.platform !== undefined) throw new NydusError('USAGE', '--platform and --all-platforms cannot be used together');
  const chunkSize = o.pushChunkSize ?? 0;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 0) throw new NydusError('USAGE', `invalid push chunk size ${chunkSize}: must be a number of bytes`);
  const concurrency = o.concurrency ?? COPY_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new NydusError('USAGE', `invalid concurrency ${concurrency}: must be a positive integer`);
  if (dst.kind === 'registry' && dst.ref.digest !== undefined) throw new NydusError('USAGE', `the target reference ${quote(o.target)} names a digest; give a tag`);
  if (src.kind === 'file' && dst.kind === 'file' && src.path === dst.path) throw new NydusError('USAGE', `the source and the target are the same file (${src.path})`);

  let source: ImageSource | undefined;
  let sink: ImageSink | undefined;
  try {
    source = src.kind === 'file'
      ? await LayoutSource.open(src.path)
      : new RegistrySource(new RegistryClient(src.ref.registry, {
        role: 'source', insecure: o.sourceInsecure, plainHttp: o.plainHttp, env: o.env, userAgent: 'nydusify-ts',
        hints: { insecure: '--source-insecure', plainHttp: '--plain-http' },
      }), src.ref);
    const top = await source.top();
    const p = await plan(source, top, o);
    const blobs = blobsOf(p, source.name);

    // The tag and the image name the target gets.
    let tag: string;
    let imageName: string | undefined;
    if (dst.kind === 'registry') tag = dst.ref.tag ?? 'latest';
    else if (src.kind === 'registry') {
      tag = src.ref.tag ?? 'latest';
      imageName = formatReference({ registry: src.ref.registry, repository: src.ref.repository, tag });
    } else {
      const entry = (source as LayoutSource).index.manifests[0]!.annotations ?? {};
      tag = entry[ANNOTATION_REF_NAME] ?? 'latest';
      imageName = entry[ANNOTATION_IMAGE_NAME];
    }
    sink = dst.kind === 'file'
      ? await LayoutSink.create(dst.path, { kind: await isDir(dst.path) ? 'dir' : 'tar', imageName })
      : new RegistrySink(new RegistryClient(dst.ref.registry, {
        role: 'target', insecure: o.targetInsecure, plainHttp: o.plainHttp, env: o.env, userAgent: 'nydusify-ts',
        hints: { insecure: '--target-insecure', plainHttp: '--plain-http' },
      }), dst.ref.repository);

    // A blob of another repository of the same registry is mounted, not sent.
    const mountFrom = source instanceof RegistrySource && sink instanceof RegistrySink
      && source.client.host === sink.client.host && source.ref.repository !== sink.repository ? source.ref.repository : undefined;
    const counts = { copied: 0, mounted: 0, skipped: 0, bytesCopied: 0 };
    const s = source;
    const t = sink;
    const queue = new PQueue({ concurrency });
    let failed: unknown;
    const one = async (digest: Digest, size: number) => {
      if (failed !== undefined) throw failed;
      if ((await t.headBlob(digest)) === size) {
        counts.skipped++;
        o.onProgress?.({ stage: 'skipped', digest, size });
        return;
      }
      const r = await t.pushBlob(() => s.getBlob(digest, size), { digest, size, ...(mountFrom ? { mountFrom } : {}), ...(chunkSize > 0 ? { chunkSize } : {}) });
      if (r.mounted) counts.mounted++;
      else {
        counts.copied++;
        counts.bytesCopied += size;
      }
      o.onProgress?.({ stage: r.mounted ? 'mounted' : 'copied', digest, size });
    };
    const tasks = [...blobs].map(([digest, size]) => queue.add(() => one(digest, size), { throwOnTimeout: true }));
    // After a failure, blobs still queued do not start (one() throws first); running ones settle.
    for (const task of tasks) task.catch((e: unknown) => (failed ??= e));
    await Promise.allSettled(tasks);
    if (failed !== undefined) throw failed;

    // Every blob is in the target: the manifests, then what the tag names.
    const manifests: CopyResult['manifests'] = [];
    for (const m of p.manifests) {
      await t.putManifest(p.index ? m.desc.digest : tag, m.bytes, m.desc.mediaType);
      o.onProgress?.({ stage: 'manifest', digest: m.desc.digest, size: m.bytes.length });
      manifests.push({ platform: m.platform, digest: m.desc.digest, mediaType: m.desc.mediaType, size: m.bytes.length });
    }
    let digest = manifests[0]!.digest;
    let mediaType = manifests[0]!.mediaType;
    if (p.index) {
      digest = await t.putManifest(tag, p.index.bytes, p.index.mediaType);
      mediaType = p.index.mediaType;
      o.onProgress?.({ stage: 'manifest', digest, size: p.index.bytes.length });
    }
    await t.commit();
    const target = dst.kind === 'file' ? `${FILE}${dst.path}` : formatReference({ registry: dst.ref.registry, repository: dst.ref.repository, tag });
    return { target, digest, mediaType, manifests, blobs: counts };
  } finally {
    await Promise.allSettled([source?.close(), sink?.close()]);
  }
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}
