// `nydusify convert`: an OCI image in a registry → a Nydus image in a registry (spec
// oci-and-converters.md §1, §2). Each source layer streams registry → decompress → tar-rafs build
// → blob upload, concurrently with a bound; only each layer's bootstrap lands in the work dir.
// Then the bootstraps are merged, the bootstrap layer and the rewritten config are pushed, and
// the manifest (and index) last, once every blob it names is in the target. The source may be an
// OCI-layout archive (--source-archive) and the target one too (--target-archive): an ImageSource
// and an ImageSink (src/oci/store.ts) stand for either; an archive takes one blob at a time.
import { access, mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { createGunzip, gzipSync } from 'node:zlib';
import PQueue from 'p-queue';
import { DecompressStream } from 'zstd-napi';
import { compressorByName, type CompressorName } from '../algo/index.js';
import { checkBatchSize, checkChunkSize, create, DEFAULT_CHUNK_SIZE, INLINE_BELOW, type CreateResult } from '../builder/create.js';
import { ChunkPool } from '../pipeline/pool.js';
import { GUNZIP_CHUNK } from '../sources/tar.js';
import { merge } from '../builder/merge.js';
import { openImage } from '../read/open.js';
import type { RafsImage } from '../read/model.js';
import { NydusError, fsError } from '../errors.js';
import { TOOL_VERSION } from '../version.js';
import { bootstrapLayer } from './bootstrap-layer.js';
import { isDigest, quote, sha256Of, type Digest } from './digest.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from './manifest.js';
import { MEDIA } from './media-types.js';
import { formatPlatform, hostPlatform, parsePlatforms, platformMatches, type PlatformSpec } from './platform.js';
import { LayoutSink, LayoutSource } from './layout.js';
import { formatReference, parseReference, type Reference } from './reference.js';
import { RegistryClient } from './registry.js';
import { RegistrySink, RegistrySource, type ImageSink, type ImageSource } from './store.js';
import { ExternalBuilder } from './external-builder.js';
import { pullChunkDict, type ChunkDict } from './chunk-dict.js';
import { openBackend, withUpload, type Backend, type BackendSpec, type InterruptHook } from '../backends/index.js';
import * as tarHeader from '../format/blob/tar-header.js';

/** The annotation keys a converted image carries (spec §1.9). */
export const ANNOTATION = {
  BLOB: 'containerd.io/snapshot/nydus-blob',
  BOOTSTRAP: 'containerd.io/snapshot/nydus-bootstrap',
  FS_VERSION: 'containerd.io/snapshot/nydus-fs-version',
  SOURCE_DIGEST: 'containerd.io/snapshot/nydus-source-digest',
  SOURCE_REFERENCE: 'containerd.io/snapshot/nydus-source-reference',
  BUILDER_VERSION: 'containerd.io/snapshot/nydus-builder-version',
  UNCOMPRESSED: 'containerd.io/uncompressed',
  /** On a zran (--oci-ref) blob layer: the OCI layer it indexes (spec §1.8). */
  REF: 'containerd.io/snapshot/nydus-ref',
} as const;

/** What the converted manifest's os.features carry in a multi-platform index (upstream's convertIndex). */
export const OS_FEATURE_NYDUS = 'nydus.remoteimage.v1';

/** The empty layer upstream prepends to the OCI manifests of a --merge-platform index (spec §1.6). */
export const EMPTY_LAYER = {
  /** A gzip of an empty tar (1024 zero bytes). */
  data: gzipSync(Buffer.alloc(1024), { level: 9 }),
  diffId: 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef' as Digest,
  annotation: 'containerd.io/snapshot/nydus-empty-layer',
  history: { created_by: 'Nydus Converter', comment: 'Nydus Empty Layer' },
} as const;

/** The version written as nydus-builder-version (upstream writes `nydus-image --version`'s). */
export const BUILDER_VERSION = TOOL_VERSION;

export interface ConvertOptions {
  /** The source image reference. */
  source: string;
  /** The target reference; or give targetSuffix. */
  target?: string;
  /** Appended to the source's tag (default "latest") to name the target in the same repository. */
  targetSuffix?: string;
  sourceInsecure?: boolean;
  targetInsecure?: boolean;
  /** Speak HTTP to both registries. */
  plainHttp?: boolean;
  /** Read the source image from this OCI-layout tar (or layout directory) instead of the registry; `source` still names it. */
  sourceArchive?: string;
  /** Write the converted image to this OCI-layout tar instead of pushing it; `target` still names it. */
  targetArchive?: string;
  /** os/arch[/variant], comma list; default linux/<host arch>. Only used when the source is an index. */
  platform?: string;
  /** Convert every platform of a source index. */
  allPlatforms?: boolean;
  /**
   * Push an OCI index holding the source's manifests (rewritten as upstream does: an empty layer
   * first) and the Nydus ones beside them, each Nydus entry with artifactType (spec §1.6).
   */
  mergePlatform?: boolean;
  /**
   * A Nydus image (a reference) whose chunks the new blobs do not store again: its bootstrap is
   * the builds' chunk dict, and its blobs that the image uses are listed in the manifest (spec §1.3).
   */
  chunkDict?: string;
  /** Skip verifying the chunk dict registry's TLS certificate. */
  chunkDictInsecure?: boolean;
  /** Write OCI media types even for a Docker source. */
  oci?: boolean;
  /** Set the manifest's subject to the source manifest (spec §1.7). */
  withReferrer?: boolean;
  /**
   * Zran images (spec §1.8): each gzip layer is indexed (targz-ref) instead of converted; the ref
   * blobs are the image's blob layers, and the original layers are kept in the target repository.
   */
  ociRef?: boolean;
  /** RAFS version, 6 (default) or 5. */
  fsVersion?: number;
  /**
   * Chunk data 4 KiB-aligned in the blob (`create --aligned-chunk`, upstream's --fs-align-chunk):
   * RAFS v5 packs chunks without it; v6 aligns them always, so there it changes nothing (an
   * external builder is still given the flag, as upstream's converter does). Not for --oci-ref.
   */
  alignedChunk?: boolean;
  compressor?: CompressorName;
  chunkSize?: number;
  /** Small chunks packed into batches of up to this many bytes (0: off), as `create --batch-size`. */
  batchSize?: number;
  /** Where the per-layer bootstraps go (a fresh directory inside it); default ./tmp. */
  workDir?: string;
  /** Paths whose inodes go in the prefetch table; default ["/"] as upstream. */
  prefetchPatterns?: string[];
  /**
   * Build with this `nydus-image` program (exec'd with the converter's argv, spec §2.3-2.4)
   * instead of in-process.
   */
  nydusImage?: string;
  /** Layers converted at once; default the number of cores. */
  concurrency?: number;
  /** Retries of each push step after the first attempt (default 3). */
  pushRetryCount?: number;
  /** Delay before the first push retry, doubled for each next (default 5000 ms). */
  pushRetryDelayMs?: number;
  /** Environment for DOCKER_CONFIG and credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Called as layers move: pulled (started), built and pushed. */
  onProgress?: (event: ConvertEvent) => void;
  /** Called around each manifest's push (upstream's NYDUS_HOOK_PLUGIN_PATH hooks); a throw before the push stops the run. */
  hooks?: ConvertHooks;
  /**
   * Put the blobs in this storage backend (key: object_prefix + blob hex) instead of the target
   * repository; the manifest then lists the bootstrap layer only (spec §1.3-1.4).
   */
  backend?: BackendSpec;
  /** Upload a blob to the backend even when an object of its id is there. */
  backendForcePush?: boolean;
  /** Told of each backend upload's abort while it runs (the CLI runs them on SIGINT); returns the unregister function. */
  onUploadAbort?: InterruptHook;
}

/** What the manifest hooks are given. */
export interface ManifestHookInfo {
  sourceRef: string;
  targetRef: string;
  /** os/arch[/variant] of the converted entry, '' for a single-manifest source. */
  platform: string;
  mediaType: string;
  digest: Digest;
  /** The manifest as it is (or was) pushed. */
  manifest: ImageManifest;
  /** The merged bootstrap, in the work dir while the hooks run. */
  bootstrapPath: string;
}

export interface ConvertHooks {
  beforePushManifest?: (info: ManifestHookInfo) => void | Promise<void>;
  afterPushManifest?: (info: ManifestHookInfo) => void | Promise<void>;
}

export interface ConvertEvent {
  platform: string;
  /** 0-based layer index, lower → upper; -1 for the image's own steps. */
  layer: number;
  layers: number;
  stage: 'pull' | 'pushed' | 'bootstrap' | 'manifest';
  /** The source layer digest, or the digest pushed. */
  digest: string;
}

/** spec §2.7: sizes in bytes, durations in nanoseconds. */
export interface ConvertMetrics {
  SourceImageSize: number;
  TargetImageSize: number;
  SourcePullElapsed: number;
  ConversionElapsed: number;
  TargetPushElapsed: number;
}

export interface ConvertedManifest {
  platform: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /** Blob layer digests in manifest order (the bootstrap layer not included). */
  blobs: Digest[];
  bootstrap: Digest;
}

export interface ConvertResult {
  /** The target reference as pushed. */
  target: string;
  /** What the target tag points at: the manifest, or the index of several. */
  digest: Digest;
  mediaType: string;
  manifests: ConvertedManifest[];
  metrics: ConvertMetrics;
}

interface Prepared {
  fsVersion: 5 | 6;
  compressor: CompressorName;
  chunkSize: number;
  batchSize: number;
  alignedChunk: boolean;
  concurrency: number;
  prefetch: string[];
  src: Reference;
  dst: Reference;
  dstTag: string;
}

function prepare(o: ConvertOptions): Prepared {
  const src = parseReference(o.source);
  if (o.target !== undefined && o.targetSuffix !== undefined) throw new NydusError('USAGE', '--target and --target-suffix cannot be used together');
  let dst: Reference;
  if (o.target !== undefined) dst = parseReference(o.target);
  else if (o.targetSuffix !== undefined) {
    if (src.digest !== undefined) throw new NydusError('USAGE', `--target-suffix needs a source reference with a tag, not a digest (${quote(o.source)})`);
    dst = parseReference(`${src.registry}/${src.repository}:${src.tag ?? 'latest'}${o.targetSuffix}`);
  } else throw new NydusError('USAGE', 'missing the target: give --target or --target-suffix');
  if (dst.digest !== undefined) throw new NydusError('USAGE', `the target reference ${quote(formatReference(dst))} names a digest; give a tag`);
  const fsVersion = o.fsVersion ?? 6;
  if (fsVersion !== 5 && fsVersion !== 6) throw new NydusError('USAGE', `invalid fs version ${fsVersion}: must be 5 or 6`);
  const compressor = o.compressor ?? 'zstd';
  if (!compressorByName(compressor) || compressor === ('gzip' as string)) throw new NydusError('USAGE', `invalid compressor ${quote(String(compressor))}: must be none, lz4_block or zstd`);
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  checkChunkSize(chunkSize);
  const batchSize = o.batchSize ?? 0;
  checkBatchSize(batchSize, chunkSize);
  const concurrency = o.concurrency ?? os.availableParallelism();
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new NydusError('USAGE', `invalid concurrency ${concurrency}: must be a positive integer`);
  if (o.ociRef && o.chunkDict !== undefined) throw new NydusError('UNSUPPORTED', '--oci-ref with --chunk-dict is not supported yet');
  if (o.ociRef && o.nydusImage !== undefined) throw new NydusError('UNSUPPORTED', '--oci-ref with --nydus-image is not supported yet: zran layers are built in-process');
  if (o.allPlatforms && o.platform !== undefined) throw new NydusError('USAGE', '--platform and --all-platforms cannot be used together');
  if (o.backend?.type === 'http-proxy' || o.backend?.type === 'registry') throw new NydusError('USAGE', `--backend-type ${o.backend.type}: convert puts blobs in oss, s3 or localfs (the target registry is the default)`);
  if (o.backend && o.chunkDict !== undefined) throw new NydusError('UNSUPPORTED', '--chunk-dict with --backend-type is not supported yet');
  if (!o.backend && o.backendForcePush) throw new NydusError('USAGE', '--backend-force-push needs --backend-type');
  if (o.sourceArchive !== undefined && o.targetArchive !== undefined && path.resolve(o.sourceArchive) === path.resolve(o.targetArchive)) {
    throw new NydusError('USAGE', `--source-archive and --target-archive are the same file (${path.resolve(o.sourceArchive)})`);
  }
  return { fsVersion, compressor, chunkSize, batchSize, alignedChunk: o.alignedChunk ?? false, concurrency, prefetch: o.prefetchPatterns ?? ['/'], src, dst, dstTag: dst.tag ?? 'latest' };
}

/** A source layer's media type → how its bytes are compressed; other types are refused. */
export function layerCompression(desc: Descriptor, where: string): 'gzip' | 'zstd' | 'none' {
  switch (desc.mediaType) {
    case MEDIA.OCI_LAYER_GZIP:
    case MEDIA.DOCKER_LAYER_GZIP:
    case MEDIA.DOCKER_LAYER_FOREIGN_GZIP:
      return 'gzip';
    case MEDIA.OCI_LAYER_ZSTD:
      return 'zstd';
    case MEDIA.OCI_LAYER_TAR:
    case 'application/vnd.docker.image.rootfs.diff.tar':
      return 'none';
    case MEDIA.NYDUS_BLOB:
      throw new NydusError('UNSUPPORTED', `${where}: the source is already a Nydus image (layer ${desc.digest} is a Nydus blob)`);
    default:
      throw new NydusError('UNSUPPORTED', `${where}: layer ${desc.digest} has media type ${quote(desc.mediaType)}, not a tar, tar+gzip or tar+zstd layer`);
  }
}

/** The layer's tar: the verified registry stream through gunzip or zstd; a decoding failure names the layer. */
export function decompressed(blob: Readable, kind: 'gzip' | 'zstd' | 'none', where: string): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const fail = (what: string) => (e: Error) => {
    out.destroy(e instanceof NydusError ? e : new NydusError('SOURCE', `${where}: ${what}: ${e.message.split('\n')[0]}`));
  };
  blob.on('error', fail('reading the layer'));
  out.on('close', () => blob.destroy());
  if (kind === 'none') return blob.pipe(out);
  const dec = kind === 'gzip' ? createGunzip({ chunkSize: GUNZIP_CHUNK }) : new DecompressStream();
  dec.on('error', fail(kind === 'gzip' ? 'not valid gzip' : 'not valid zstd'));
  out.on('close', () => dec.destroy());
  return blob.pipe(dec).pipe(out);
}

const now = () => process.hrtime.bigint();

class Converter {
  /** Blob digests already confirmed in the target repository by this run. */
  private readonly confirmed = new Set<string>();
  /** The --chunk-dict image, pulled; closed by close(). */
  dict?: ChunkDict;
  /** The external builder of --nydus-image, or undefined to build in-process. */
  private readonly builder?: ExternalBuilder;
  readonly metrics: ConvertMetrics = { SourceImageSize: 0, TargetImageSize: 0, SourcePullElapsed: 0, ConversionElapsed: 0, TargetPushElapsed: 0 };
  /** The storage backend of --backend-type, opened by convert(); closed there. */
  backend?: Backend;

  /**
   * `work` holds this run's merged bootstraps; `layersDir` the per-layer bootstraps, named by blob
   * hex, with a `<key>.json` per source layer saying which blob it became. A failed run leaves
   * `layersDir` behind, so a rerun skips the layers whose blobs the target already has.
   */
  constructor(
    private readonly o: ConvertOptions, private readonly p: Prepared, private readonly work: string, private readonly layersDir: string,
    private readonly source: ImageSource, private readonly target: ImageSink,
  ) {
    if (o.nydusImage !== undefined) this.builder = new ExternalBuilder(o.nydusImage);
  }

  async run(): Promise<ConvertResult> {
    const { src, dst, dstTag } = this.p;
    const pullStart = now();
    const top = await this.source.top();
    const srcRef = formatReference(src);
    type Job = { desc: Descriptor; manifest: ImageManifest; platform: string; platformObj?: Platform };
    const jobs: Job[] = [];
    if (top.kind === 'manifest') {
      jobs.push({ desc: { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length }, manifest: top.manifest, platform: '' });
    } else {
      const wanted: PlatformSpec[] | 'all' = this.o.allPlatforms ? 'all' : this.o.platform !== undefined ? parsePlatforms(this.o.platform) : [hostPlatform()];
      // All platforms: every entry but attestations (buildx lists those as unknown/unknown).
      const chosen = top.index.manifests.filter((m) => (wanted === 'all' ? m.platform?.os !== 'unknown' : wanted.some((w) => platformMatches(m.platform, w))));
      if (chosen.length === 0) {
        const have = top.index.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ');
        throw new NydusError('SOURCE', `${srcRef}: the index has no manifest for ${wanted === 'all' ? 'any platform' : wanted.map(formatPlatform).join(', ')} (it has ${have || 'none'})`);
      }
      for (const d of chosen) {
        const f = await this.source.getManifest(d.digest);
        if (f.kind !== 'manifest') throw new NydusError('SOURCE', `${srcRef}: index entry ${d.digest} is itself an index; nested indexes are not supported`);
        jobs.push({ desc: { mediaType: f.mediaType, digest: f.digest, size: f.bytes.length }, manifest: f.manifest, platform: d.platform ? formatPlatform(d.platform) : '', platformObj: d.platform });
      }
    }
    const configs: Array<{ config: ImageConfig; bytes: Buffer }> = [];
    for (const j of jobs) {
      if (j.manifest.layers.at(-1)?.annotations?.[ANNOTATION.BOOTSTRAP] !== undefined) {
        throw new NydusError('UNSUPPORTED', `${srcRef}: the source is already a Nydus image (its last layer is a Nydus bootstrap)`);
      }
      j.manifest.layers.forEach((l) => {
        const kind = layerCompression(l, srcRef);
        if (this.o.ociRef && kind !== 'gzip') throw new NydusError('UNSUPPORTED', `${srcRef}: --oci-ref indexes gzip layers only; layer ${l.digest} is ${kind === 'none' ? 'an uncompressed tar' : kind}`);
      });
      configs.push(await this.source.getConfig(j.manifest.config));
      this.metrics.SourceImageSize += j.manifest.config.size + j.manifest.layers.reduce((n, l) => n + l.size, 0);
    }
    this.metrics.SourcePullElapsed = Number(now() - pullStart);

    if (this.o.chunkDict !== undefined) {
      const platforms = this.o.platform !== undefined ? parsePlatforms(this.o.platform) : [hostPlatform()];
      this.dict = await pullChunkDict(this.o.chunkDict, this.work, platforms, {
        role: 'source', insecure: this.o.chunkDictInsecure, plainHttp: this.o.plainHttp, env: this.o.env, userAgent: 'nydusify-ts',
        hints: { insecure: '--chunk-dict-insecure', plainHttp: '--plain-http' },
      });
    }

    const convStart = now();
    const queue = new PQueue({ concurrency: this.p.concurrency });
    // One worker per core for all the layers built here: while two are built each gets what the
    // other leaves, and the last one alone gets them all (a pool per layer split the cores and left
    // half of them idle under the last layer).
    const pool = this.builder || this.o.ociRef ? undefined : new ChunkPool(Math.max(1, os.availableParallelism()));
    let converted: Awaited<ReturnType<Converter['convertManifest']>>[];
    try {
      converted = await this.all(jobs.map((j, i) => this.convertManifest(j.desc, j.manifest, configs[i]!, j.platform, queue, pool, srcRef, i)));
    } finally {
      await pool?.destroy();
    }
    this.metrics.ConversionElapsed = Number(now() - convStart);

    // --merge-platform: the source manifests, rewritten, go in the index too; their blobs first.
    const pushStart = now();
    const merged: Descriptor[] = [];
    if (this.o.mergePlatform) {
      for (const [i, j] of jobs.entries()) merged.push(await this.rewriteSource(j.desc, j.manifest, configs[i]!, j.platformObj));
    }

    // Every blob and config is in the target: now the manifests, then the index (if any) under the tag.
    const results: ConvertedManifest[] = [];
    const entries: Descriptor[] = [];
    for (const [i, c] of converted.entries()) {
      const single = converted.length === 1 && !this.o.mergePlatform;
      const ref = single ? dstTag : c.digest;
      const info: ManifestHookInfo = {
        sourceRef: formatReference(src), targetRef: formatReference({ ...dst, tag: dstTag }), platform: c.platform,
        mediaType: c.mediaType, digest: c.digest, manifest: JSON.parse(c.bytes.toString('utf8')) as ImageManifest, bootstrapPath: c.bootstrapPath,
      };
      await this.hook('beforePushManifest', info);
      await this.target.putManifest(ref, c.bytes, c.mediaType);
      await this.hook('afterPushManifest', info);
      this.progress({ platform: c.platform, layer: -1, layers: c.blobs.length, stage: 'manifest', digest: c.digest });
      results.push({ platform: c.platform, digest: c.digest, mediaType: c.mediaType, size: c.bytes.length, blobs: c.blobs, bootstrap: c.bootstrap });
      const platform = jobs[i]!.platformObj;
      if (this.o.mergePlatform) {
        entries.push({ mediaType: c.mediaType, digest: c.digest, size: c.bytes.length, platform: merged[i]!.platform, artifactType: MEDIA.NYDUS_ARTIFACT });
      } else {
        entries.push({
          mediaType: c.mediaType, digest: c.digest, size: c.bytes.length,
          ...(platform ? { platform: { ...platform, 'os.features': [...(platform['os.features'] ?? []), OS_FEATURE_NYDUS] } } : {}),
        });
      }
    }
    let digest = results[0]!.digest;
    let mediaType = results[0]!.mediaType;
    if (this.o.mergePlatform || converted.length > 1) {
      const oci = this.o.mergePlatform || this.o.oci || top.mediaType === MEDIA.OCI_INDEX;
      mediaType = oci ? MEDIA.OCI_INDEX : MEDIA.DOCKER_MANIFEST_LIST;
      const index: ImageIndex = { schemaVersion: 2, mediaType, manifests: [...merged, ...entries] };
      const bytes = Buffer.from(JSON.stringify(index));
      digest = await this.target.putManifest(dstTag, bytes, mediaType);
    }
    await this.target.commit();
    this.metrics.TargetPushElapsed = Number(now() - pushStart);
    return { target: formatReference({ ...dst, tag: dstTag }), digest, mediaType, manifests: results, metrics: this.metrics };
  }

  /** The first failure of the run; layers not started yet are not started. */
  private failed?: unknown;

  /**
   * Like Promise.all, but on a failure waits for the others to settle (so nothing still writes
   * to the work dir or the registry once convert() returns) and throws the first failure.
   */
  private async all<T>(tasks: Array<Promise<T>>): Promise<T[]> {
    for (const t of tasks) t.catch((e: unknown) => (this.failed ??= e));
    const settled = await Promise.allSettled(tasks);
    if (this.failed !== undefined) throw this.failed;
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  }

  private async hook(name: keyof ConvertHooks, info: ManifestHookInfo): Promise<void> {
    const fn = this.o.hooks?.[name];
    if (!fn) return;
    try {
      await fn(info);
    } catch (e) {
      throw e instanceof NydusError ? e : new NydusError('OUTPUT', `hook ${name} failed: ${String((e as Error)?.message ?? e).split('\n')[0]}`, { cause: e });
    }
  }

  /**
   * A source manifest as a --merge-platform index holds it (acceld ≥ v0.2.21): an empty gzip layer
   * first, so containerd does not share its snapshots with the Nydus image, and the source digest
   * as an annotation; its layers copied (or mounted) into the target repository. Returns its entry.
   */
  private async rewriteSource(desc: Descriptor, manifest: ImageManifest, cfg: { config: ImageConfig }, platformObj?: Platform): Promise<Descriptor> {
    const docker = desc.mediaType === MEDIA.DOCKER_MANIFEST;
    const emptyDigest = sha256Of(EMPTY_LAYER.data);
    await this.pushBytes(EMPTY_LAYER.data, emptyDigest);
    for (const l of manifest.layers) await this.copySourceBlob(l);
    const config: ImageConfig = {
      ...cfg.config,
      rootfs: { ...cfg.config.rootfs, diff_ids: [EMPTY_LAYER.diffId, ...cfg.config.rootfs.diff_ids] },
      history: [{ ...EMPTY_LAYER.history }, ...(cfg.config.history ?? [])],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = sha256Of(configBytes);
    await this.pushBytes(configBytes, configDigest);
    const out: ImageManifest = {
      ...manifest,
      config: { ...manifest.config, digest: configDigest, size: configBytes.length },
      layers: [
        { mediaType: docker ? MEDIA.DOCKER_LAYER_GZIP : MEDIA.OCI_LAYER_GZIP, digest: emptyDigest, size: EMPTY_LAYER.data.length, annotations: { [EMPTY_LAYER.annotation]: 'true' } },
        ...manifest.layers,
      ],
      annotations: { ...manifest.annotations, [ANNOTATION.SOURCE_DIGEST]: desc.digest },
    };
    const bytes = Buffer.from(JSON.stringify(out));
    const digest = await this.target.putManifest(sha256Of(bytes), bytes, desc.mediaType);
    const platform: Platform = platformObj ?? { os: cfg.config.os, architecture: cfg.config.architecture, ...(cfg.config.variant ? { variant: cfg.config.variant } : {}) };
    return { mediaType: desc.mediaType, digest, size: bytes.length, platform, annotations: { [ANNOTATION.SOURCE_DIGEST]: desc.digest } };
  }

  /** A chunk dict blob into the target (copyBlob). */
  private copyDictBlob(d: Descriptor): Promise<void> {
    const dict = this.dict!;
    return this.copyBlob(d, dict.client.host, dict.ref.repository, () => dict.client.getBlob(dict.ref.repository, d.digest, d.size));
  }

  /** A blob of another repository into the target: skipped when there, mounted within one registry, else streamed across. */
  private async copyBlob(d: Descriptor, host: string | undefined, repository: string | undefined, get: () => Promise<Readable>): Promise<void> {
    if (this.confirmed.has(d.digest)) return;
    if ((await this.target.headBlob(d.digest)) !== d.size) {
      const mountFrom = this.target instanceof RegistrySink && host !== undefined && this.target.client.host === host && this.target.repository !== repository
        ? repository : undefined;
      await this.target.pushBlob(get, { digest: d.digest, size: d.size, ...(mountFrom ? { mountFrom } : {}) });
    }
    this.confirmed.add(d.digest);
  }

  private progress(e: ConvertEvent): void {
    this.o.onProgress?.(e);
  }

  /** Converts one manifest's layers and pushes its blobs, bootstrap layer and config; returns the manifest to put. */
  private async convertManifest(
    srcDesc: Descriptor, manifest: ImageManifest, cfg: { config: ImageConfig; bytes: Buffer }, platform: string,
    queue: PQueue, pool: ChunkPool | undefined, srcRef: string, n: number,
  ): Promise<{ platform: string; digest: Digest; bytes: Buffer; mediaType: string; blobs: Digest[]; bootstrap: Digest; bootstrapPath: string }> {
    const dir = path.join(this.work, `m${n}`);
    await mkdir(dir);
    const layers = manifest.layers;
    // The merge below opens every layer's bootstrap: a layer done while others are still being
    // built has it opened meanwhile (the main thread has time to spare then), so that after the
    // last one only its own is left to open. A failure here is left for the merge to report. Only
    // for in-process builds (those with the pool): the external builder merges by itself.
    const opened = new Map<string, RafsImage>();
    let left = layers.length;
    const done = <B extends { bootstrapPath: string }>(b: B): B => {
      if (--left > 0 && pool) {
        setImmediate(() => {
          if (this.failed) return;
          try {
            opened.set(b.bootstrapPath, openImage(b.bootstrapPath));
          } catch {
            // The merge opens it again and says what is wrong.
          }
        });
      }
      return b;
    };
    const built = await this.all(layers.map((l, i) => queue.add(async () => {
      // After a failure elsewhere, layers still waiting in the queue do not start.
      if (this.failed) throw this.failed;
      return done(await (this.o.ociRef ? this.convertRefLayer(l, i, layers.length, platform, srcRef) : this.convertLayer(l, i, layers.length, platform, pool, srcRef)));
    }, { throwOnTimeout: true })));

    // The converter's merge: the per-layer bootstraps named by blob hex, lower → upper, stdin "/".
    const mergedPath = path.join(dir, 'bootstrap');
    const sources = built.map((b) => b.bootstrapPath);
    const chunkDict = this.dict?.bootstrap;
    // --oci-ref: the bootstraps are named by the gzip layers (the blobs' ids); the ref blobs' digests,
    // sizes and TOCs go in as the SEPARATE blobs' meta (spec §1.8, §2.4).
    const refs = this.o.ociRef ? (built as RefLayer[]) : undefined;
    const merged = this.builder
      ? await this.builder.merge(dir, sources, this.p.prefetch, chunkDict)
      : await merge({
        sources, bootstrap: mergedPath, prefetch: this.p.prefetch, opened, ...(chunkDict ? { chunkDict } : {}),
        ...(refs ? {
          blobDigests: refs.map((r) => r.digest.slice(7)), blobSizes: refs.map((r) => r.size),
          blobTocDigests: refs.map((r) => r.tocDigest), blobTocSizes: refs.map((r) => r.tocSize),
        } : {}),
      });
    const boot = await readFile(mergedPath);
    const layer = await bootstrapLayer(boot, built.flatMap((b) => (b.blobMeta ? [{ hex: (refs ? (b as RefLayer).layer : b.digest).slice(7), data: b.blobMeta }] : [])));

    // Zran images are OCI whatever the source (spec §1.8).
    const oci = this.o.oci || this.o.ociRef || srcDesc.mediaType === MEDIA.OCI_MANIFEST;
    const bootDesc: Descriptor = {
      mediaType: oci ? MEDIA.OCI_LAYER_GZIP : MEDIA.DOCKER_LAYER_GZIP,
      digest: layer.digest, size: layer.data.length,
      annotations: { [ANNOTATION.BOOTSTRAP]: 'true', [ANNOTATION.FS_VERSION]: String(this.p.fsVersion) },
    };
    await this.pushBytes(layer.data, layer.digest);
    this.progress({ platform, layer: -1, layers: layers.length, stage: 'bootstrap', digest: layer.digest });

    // Blobs: one per source layer, in order; then any the merged bootstrap names that are not among them.
    const blobDescs: Descriptor[] = built.map((b, i) => ({
      mediaType: MEDIA.NYDUS_BLOB, digest: b.digest, size: b.size,
      annotations: { [ANNOTATION.BLOB]: 'true', ...(refs ? { [ANNOTATION.REF]: refs[i]!.layer } : {}) },
    }));
    // A zran image's blob table names the gzip layers, which the manifest does not list.
    const listed = new Set(refs ? refs.map((r) => r.layer.slice(7)) : blobDescs.map((d) => d.digest.slice(7)));
    const extra = merged.blobs.filter((id) => !listed.has(id));
    const unknown = extra.filter((id) => !this.dict?.blobs.has(id));
    if (unknown.length > 0) throw new NydusError('INTERNAL', `the merged bootstrap names blobs no layer produced: ${unknown.join(', ')}`);
    // The chunk dict's blobs the image uses: in the target repository, then listed after the layers' own.
    for (const id of extra) {
      const d = this.dict!.blobs.get(id)!;
      await this.copyDictBlob(d);
      blobDescs.push({ mediaType: MEDIA.NYDUS_BLOB, digest: d.digest, size: d.size, annotations: { [ANNOTATION.BLOB]: 'true' } });
    }

    // With a storage backend the blobs live there: the manifest lists the bootstrap only, the
    // config's diff_ids and history that one layer, and the bootstrap keeps its uncompressed digest (spec §1.2-1.4).
    const listedBlobs = this.backend ? [] : blobDescs;
    if (this.backend) bootDesc.annotations = { ...bootDesc.annotations, [ANNOTATION.UNCOMPRESSED]: layer.diffId };
    const bootHistory = { created_by: 'Nydus Converter', comment: 'Nydus Bootstrap Layer' };
    const config: ImageConfig = {
      ...cfg.config,
      rootfs: { ...cfg.config.rootfs, type: 'layers', diff_ids: [...listedBlobs.map((d) => d.digest), layer.diffId] },
      history: this.backend ? [bootHistory] : [...(cfg.config.history ?? []), bootHistory],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = sha256Of(configBytes);
    await this.pushBytes(configBytes, configDigest);

    const mediaType = oci ? MEDIA.OCI_MANIFEST : MEDIA.DOCKER_MANIFEST;
    const out: ImageManifest = {
      schemaVersion: 2,
      mediaType,
      config: { mediaType: this.o.mergePlatform ? MEDIA.NYDUS_CONFIG : oci ? MEDIA.OCI_CONFIG : MEDIA.DOCKER_CONFIG, digest: configDigest, size: configBytes.length },
      layers: [...listedBlobs, bootDesc],
      ...(this.o.withReferrer ? { subject: { mediaType: srcDesc.mediaType, digest: srcDesc.digest, size: srcDesc.size } } : {}),
      annotations: {
        [ANNOTATION.SOURCE_DIGEST]: srcDesc.digest,
        [ANNOTATION.SOURCE_REFERENCE]: srcRef,
        [ANNOTATION.FS_VERSION]: String(this.p.fsVersion),
        [ANNOTATION.BUILDER_VERSION]: BUILDER_VERSION,
      },
    };
    const bytes = Buffer.from(JSON.stringify(out));
    this.metrics.TargetImageSize += configBytes.length + layer.data.length + blobDescs.reduce((s, d) => s + d.size, 0);
    return { platform, digest: sha256Of(bytes), bytes, mediaType, blobs: blobDescs.map((d) => d.digest), bootstrap: layer.digest, bootstrapPath: mergedPath };
  }

  /** A source layer into the target repository (copyBlob). */
  private copySourceBlob(l: Descriptor): Promise<void> {
    const src = this.source instanceof RegistrySource ? this.source : undefined;
    return this.copyBlob(l, src?.client.host, src?.ref.repository, () => this.source.getBlob(l.digest, l.size));
  }

  /**
   * One --oci-ref layer: the gzip layer, still compressed, streams from the source into a
   * targz-ref build whose ref blob (blob.meta, bootstrap, TOC; no file data) is then pushed; the
   * layer itself goes into the target repository as it is. The per-layer bootstrap is named by
   * the layer's hex, its blob's id.
   */
  private async convertRefLayer(desc: Descriptor, i: number, count: number, platform: string, srcRef: string): Promise<RefLayer> {
    const where = `${srcRef}: layer ${i} (${desc.digest})`;
    await this.copySourceBlob(desc);
    this.progress({ platform, layer: i, layers: count, stage: 'pull', digest: desc.digest });
    const refFile = path.join(this.work, `ref-${++this.refSeq}`);
    let result: CreateResult;
    try {
      result = await create({ type: 'targz-ref', source: await this.source.getBlob(desc.digest, desc.size), blob: refFile, blobInlineMeta: true, blobToc: true });
    } catch (e) {
      if (e instanceof NydusError) throw new NydusError(e.code, `${where}: ${e.message}`, { cause: e });
      throw e;
    }
    const hex = desc.digest.slice(7);
    if (result.blobs.length > 0 && result.blobs[0] !== hex) throw new NydusError('SOURCE', `${where}: the layer's bytes hash to sha256:${result.blobs[0]}`);
    const ref = await readFile(refFile);
    const tail = tarHeader.decode(ref, ref.length - tarHeader.SIZE);
    const tocSize = tail.size + tarHeader.SIZE;
    const tocDigest = sha256Of(ref.subarray(ref.length - tocSize)).slice(7);
    const pushed = { digest: sha256Of(ref), size: ref.length };
    await this.pushBytes(ref, pushed.digest);
    await rm(refFile, { force: true });
    const bootstrapPath = path.join(this.layersDir, hex);
    await writeOut(bootstrapPath, result.inlineBootstrap!);
    this.progress({ platform, layer: i, layers: count, stage: 'pushed', digest: pushed.digest });
    return { digest: pushed.digest, size: pushed.size, bootstrapPath, layer: desc.digest, tocDigest, tocSize, ...(result.blobMeta ? { blobMeta: result.blobMeta } : {}) };
  }

  private refSeq = 0;

  /** A small blob whose digest is known: skipped when the target has it, else uploaded (restartable). */
  private async pushBytes(data: Buffer, digest: Digest): Promise<void> {
    if (this.confirmed.has(digest)) return;
    if ((await this.target.headBlob(digest)) !== data.length) await this.target.pushBlob(() => Readable.from([data]), { digest, size: data.length });
    this.confirmed.add(digest);
  }

  /**
   * One layer: pull → decompress → build, the blob streamed into the upload as it is made. A
   * failed upload that can be retried starts the layer over (pull and build again), since the blob
   * was never stored anywhere else.
   */
  private async convertLayer(
    desc: Descriptor, i: number, count: number, platform: string, pool: ChunkPool | undefined, srcRef: string,
  ): Promise<{ digest: Digest; size: number; bootstrapPath: string; blobMeta?: Buffer }> {
    const where = `${srcRef}: layer ${i} (${desc.digest})`;
    const kind = layerCompression(desc, srcRef);
    // What makes the blob: the source layer and every option the build reads.
    const key = sha256Of(JSON.stringify([desc.digest, this.p.fsVersion, this.p.compressor, this.p.chunkSize, this.p.prefetch, this.o.nydusImage ?? BUILDER_VERSION, this.dict?.digest ?? null, ...(this.p.batchSize ? [this.p.batchSize] : []), ...(this.p.alignedChunk ? ['aligned'] : [])])).slice(7);
    const record = path.join(this.layersDir, `${key}.json`);
    const resumed = await this.resumed(record);
    if (resumed) {
      this.progress({ platform, layer: i, layers: count, stage: 'pushed', digest: resumed.digest });
      return resumed;
    }
    let build: Promise<Pick<CreateResult, 'inlineBootstrap' | 'blobMeta'>> | undefined;
    const open = async (): Promise<Readable> => {
      this.progress({ platform, layer: i, layers: count, stage: 'pull', digest: desc.digest });
      const blob = await this.source.getBlob(desc.digest, desc.size);
      const tar = decompressed(blob, kind, where);
      const out = new PassThrough({ highWaterMark: 4 << 20 });
      if (this.builder) {
        build = this.builder.pack(this.work, tar, out, { fsVersion: this.p.fsVersion, compressor: this.p.compressor, chunkSize: this.p.chunkSize, batchSize: this.p.batchSize, alignedChunk: this.p.alignedChunk, prefetch: this.p.prefetch, ...(this.dict ? { chunkDict: this.dict.bootstrap } : {}) }, where)
          .catch((e: unknown) => {
            tar.destroy();
            out.destroy(e as Error);
            throw e;
          });
        build.catch(() => undefined);
        return out;
      }
      build = create({
        type: 'tar-rafs', source: tar, blobOut: out, blobInlineMeta: true, blobToc: this.p.fsVersion === 6, whiteoutSpec: 'none',
        fsVersion: this.p.fsVersion, compressor: this.p.compressor, chunkSize: this.p.chunkSize, batchSize: this.p.batchSize, alignedChunk: this.p.alignedChunk, prefetch: this.p.prefetch,
        pool,
        // A layer that may be small is built on this thread when it is: starting workers would cost
        // it more than they save. One whose compressed bytes alone pass the mark uses them at once.
        inlineSmall: desc.size < INLINE_BELOW,
        ...(this.dict ? { chunkDict: `bootstrap=${this.dict.bootstrap}` } : {}),
      }).catch((e: unknown) => {
        tar.destroy();
        throw e;
      });
      // The upload reports the failure through the stream; the build's own rejection is read below.
      build.catch(() => undefined);
      return out;
    };
    const pushed = this.backend ? await this.pushToBackend(this.backend, open) : await this.target.pushBlob(open);
    const result = await build!;
    this.confirmed.add(pushed.digest);
    const hex = pushed.digest.slice(7);
    const bootstrapPath = path.join(this.layersDir, hex);
    const blobMeta = this.p.fsVersion === 6 ? result.blobMeta : undefined;
    await writeOut(bootstrapPath, result.inlineBootstrap!);
    if (blobMeta) await writeOut(`${bootstrapPath}.blob.meta`, blobMeta);
    // Last, so a record always names files that are complete.
    await writeOut(record, Buffer.from(JSON.stringify({ digest: pushed.digest, size: pushed.size, blobMeta: blobMeta !== undefined })));
    this.progress({ platform, layer: i, layers: count, stage: 'pushed', digest: pushed.digest });
    return { digest: pushed.digest, size: pushed.size, bootstrapPath, ...(blobMeta ? { blobMeta } : {}) };
  }

  /**
   * A layer's blob into the storage backend as it is built: hashed on the way, then committed
   * under its hex (an object already there is kept unless backendForcePush); a failure aborts it.
   */
  private async pushToBackend(backend: Backend, open: () => Promise<Readable>): Promise<{ digest: Digest; size: number }> {
    return withUpload(backend, this.o.onUploadAbort ? { onInterrupt: this.o.onUploadAbort } : {}, async (upload) => {
      const hash = createHash('sha256');
      let size = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      });
      await streamPipeline(await open(), count, upload.stream);
      const digest = `sha256:${hash.digest('hex')}` as Digest;
      await upload.commit(digest.slice(7), this.o.backendForcePush ?? false);
      return { digest, size };
    });
  }

  /** Whether the blob is where this run puts blobs (the backend, or the target repository), at that size. */
  private async blobThere(digest: Digest, size: number): Promise<boolean> {
    return (this.backend ? await this.backend.size(digest.slice(7)) : await this.target.headBlob(digest)) === size;
  }

  /** A layer an earlier failed run converted and pushed, when its files are here and the target has its blob. */
  private async resumed(record: string): Promise<{ digest: Digest; size: number; bootstrapPath: string; blobMeta?: Buffer } | undefined> {
    let r: { digest?: unknown; size?: unknown; blobMeta?: unknown };
    try {
      r = JSON.parse(await readFile(record, 'utf8')) as typeof r;
    } catch {
      return undefined;
    }
    if (!isDigest(r.digest) || !Number.isSafeInteger(r.size)) return undefined;
    const bootstrapPath = path.join(this.layersDir, r.digest.slice(7));
    let blobMeta: Buffer | undefined;
    try {
      await access(bootstrapPath);
      if (r.blobMeta === true) blobMeta = await readFile(`${bootstrapPath}.blob.meta`);
    } catch {
      return undefined;
    }
    if (!(await this.blobThere(r.digest, r.size as number))) return undefined;
    this.confirmed.add(r.digest);
    return { digest: r.digest, size: r.size as number, bootstrapPath, ...(blobMeta ? { blobMeta } : {}) };
  }
}

/** A converted --oci-ref layer: its ref blob as pushed, the gzip layer it indexes, and the ref blob's TOC (64 hex, bytes). */
interface RefLayer {
  digest: Digest;
  size: number;
  bootstrapPath: string;
  blobMeta?: Buffer;
  layer: Digest;
  tocDigest: string;
  tocSize: number;
}

async function writeOut(file: string, data: Buffer): Promise<void> {
  try {
    await writeFile(file, data);
  } catch (e) {
    throw fsError('OUTPUT', file, e);
  }
}

/** Where the image comes from and goes to: the registries the references name, or OCI-layout archives. */
async function endpoints(o: ConvertOptions, p: Prepared): Promise<[ImageSource, ImageSink]> {
  const retries = o.pushRetryCount ?? 3;
  if (!Number.isSafeInteger(retries) || retries < 0) throw new NydusError('USAGE', `invalid push retry count ${retries}`);
  const source: ImageSource = o.sourceArchive !== undefined
    ? await LayoutSource.open(path.resolve(o.sourceArchive))
    : new RegistrySource(new RegistryClient(p.src.registry, {
      role: 'source', insecure: o.sourceInsecure, plainHttp: o.plainHttp, env: o.env, userAgent: 'nydusify-ts',
      hints: { insecure: '--source-insecure', plainHttp: '--plain-http' },
    }), p.src);
  try {
    const sink: ImageSink = o.targetArchive !== undefined
      ? await LayoutSink.create(path.resolve(o.targetArchive), { kind: 'tar', imageName: formatReference({ ...p.dst, tag: p.dstTag }) })
      : new RegistrySink(new RegistryClient(p.dst.registry, {
        role: 'target', insecure: o.targetInsecure, plainHttp: o.plainHttp, env: o.env, userAgent: 'nydusify-ts',
        hints: { insecure: '--target-insecure', plainHttp: '--plain-http' }, retries, retryDelayMs: o.pushRetryDelayMs ?? 5000,
      }), p.dst.repository);
    return [source, sink];
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** Converts an image from a registry (or an OCI-layout archive) into a Nydus image pushed to a registry (or written as an archive); see ConvertOptions. */
export async function convert(o: ConvertOptions): Promise<ConvertResult> {
  const p = prepare(o);
  const base = path.resolve(o.workDir ?? './tmp');
  let createdBase = false;
  try {
    createdBase = (await mkdir(base, { recursive: true })) !== undefined;
  } catch (e) {
    throw fsError('OUTPUT', base, e);
  }
  let work: string;
  const layersDir = path.join(base, 'nydusify-layers');
  try {
    work = await mkdtemp(path.join(base, 'nydusify-'));
    await mkdir(layersDir, { recursive: true });
  } catch (e) {
    throw fsError('OUTPUT', base, e);
  }
  let ok = false;
  let source: ImageSource | undefined;
  let sink: ImageSink | undefined;
  let converter: Converter | undefined;
  try {
    [source, sink] = await endpoints(o, p);
    converter = new Converter(o, p, work, layersDir, source, sink);
    if (o.backend) converter.backend = await openBackend(o.backend, { role: 'write' });
    const result = await converter.run();
    ok = true;
    return result;
  } finally {
    await converter?.dict?.client.close();
    await converter?.backend?.close();
    await Promise.allSettled([source?.close(), sink?.close()]);
    await rm(work, { recursive: true, force: true });
    if (ok) await rm(layersDir, { recursive: true, force: true });
    // The work dir goes too when this run made it and nothing else is in it (upstream keeps a given one).
    if (createdBase && (await readdir(base).catch(() => ['?'])).length === 0) await rmdir(base).catch(() => undefined);
  }
}
