// `create`: source -> pipeline -> blob trailer -> bootstrap, optionally on a parent bootstrap and
// with a chunk dict; every output stays under a temporary name until the build has succeeded.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { Writable } from 'node:stream';
import { compressorByName, digesterByName, type CompressorName, type DigesterName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { OutputFile } from '../io/atomic.js';
import { checkNoCollision, realPathOf } from '../io/collide.js';
import { dirSource } from '../sources/dir.js';
import { TreeAssembler } from '../tree/assemble.js';
import { isDirNode, walk, type TreeNode } from '../tree/node.js';
import { runPipeline } from '../pipeline/compose.js';
import { blobSink } from '../pipeline/stages/sink.js';
import type { BuildState, StageDef } from '../pipeline/stage.js';
import { BufferPool } from '../pipeline/buffers.js';
import { BATCH_BYTES } from '../pipeline/stages/chunk.js';
import { BlobWriter, blobFeatures, type ByteSink } from './blob.js';
import { planBootstrap, type Plan } from '../bootstrap/plan.js';
import { emitBootstrap } from '../bootstrap/emit.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import { Trace } from './trace.js';
import { conversionByName } from './conversions.js';
import { blobEntryFromInfo, blobFileIn } from './blob-table.js';
import { badBlobId } from '../format/limits.js';
import { parseChunkDictArg } from './chunk-dict-arg.js';
import type { BlobInfo, RafsImage } from '../read/model.js';
import { applyLayer, normalizeHardlinks, whiteoutType } from '../tree/overlay.js';
import { writeBootstrap } from './bootstrap-file.js';

export interface CreateOptions {
  /** A directory or tar path; for tar conversions also a stream of the (maybe gzipped) tar. */
  source: string | NodeJS.ReadableStream;
  /** Conversion type (see conversions.ts). */
  type?: string;
  bootstrap?: string;
  blob?: string;
  blobDir?: string;
  /** The blob's bytes go to this stream, in order, instead of a file (a registry upload, say). */
  blobOut?: Writable;
  blobCacheDir?: string;
  blobInlineMeta?: boolean;
  blobToc?: boolean;
  blobId?: string;
  fsVersion?: number;
  compressor?: CompressorName;
  digester?: DigesterName;
  chunkSize?: number;
  alignedChunk?: boolean;
  repeatable?: boolean;
  whiteoutSpec?: 'oci' | 'overlayfs' | 'none';
  /** Build this layer on top of that bootstrap (OCI overlay rules; its blobs come first). */
  parentBootstrap?: string;
  /** `bootstrap=PATH` (or PATH): chunks found there are referenced, not stored again. */
  chunkDict?: string;
  /** Paths (relative to the source root) whose inodes go in the prefetch table. */
  prefetch?: string[];
  /** Extra pipeline stages (plugins). */
  stages?: StageDef[];
  /** Compression worker threads; default: one per core. */
  threads?: number;
  /** Called as the build moves, for progress display. */
  onProgress?: (p: BuildState['progress']) => void;
}

export interface CreateResult {
  /** Path of the bootstrap written ('' when it is only inside the blob). */
  bootstrap: string;
  /** Blob ids in blob-table order. */
  blobs: string[];
  /** Path of the data blob written, if any. */
  blobPath?: string;
  /** Size of the data blob file in bytes. */
  blobSize: number;
  compressor: CompressorName;
  fsVersion: '6';
  trace: Trace;
  /** With blobInlineMeta: the bootstrap inlined in the blob, uncompressed (what upstream's converter extracts as image.boot). */
  inlineBootstrap?: Buffer;
  /**
   * The blob's chunk-info table padded to 4 KiB then its 4 KiB blob.meta header, as nydusd keeps
   * `<blob id>.blob.meta` (spec oci-and-converters.md §1.2); undefined for a blob without chunks.
   */
  blobMeta?: Buffer;
}

export const DEFAULT_CHUNK_SIZE = 0x100000;

export function checkChunkSize(n: number): void {
  if (!Number.isInteger(n) || n < 0x1000 || n > 0x1000000 || (n & (n - 1)) !== 0) {
    throw new NydusError('USAGE', `invalid chunk size 0x${Number.isFinite(n) ? n.toString(16) : n}: must be a power of two from 0x1000 to 0x1000000`);
  }
}

function validate(o: CreateOptions): void {
  const conv = conversionByName(o.type ?? 'dir-rafs');
  if (!conv) throw new NydusError('USAGE', `unknown conversion type ${JSON.stringify(o.type)}`);
  if (!conv.implemented) throw new NydusError('UNSUPPORTED', `conversion type ${conv.name} is not supported yet`);
  if (typeof o.source !== 'string' && (conv.source !== 'tar' || conv.name === 'tar-tarfs')) {
    throw new NydusError('USAGE', `conversion type ${conv.name} reads a path, not a stream`);
  }
  if (o.blobOut && (o.blob || o.blobDir || o.blobCacheDir)) throw new NydusError('USAGE', 'a blob stream cannot be used with --blob, --blob-dir or --blob-cache-dir');
  if ((o.fsVersion ?? 6) === 5) throw new NydusError('UNSUPPORTED', 'RAFS v5 output (--fs-version 5) is not supported yet; use --fs-version 6');
  if ((o.fsVersion ?? 6) !== 6) throw new NydusError('USAGE', `invalid fs version ${o.fsVersion}: must be 5 or 6`);
  checkChunkSize(o.chunkSize ?? DEFAULT_CHUNK_SIZE);
  if (o.blobCacheDir) {
    for (const [k, v] of [['--blob', o.blob], ['--blob-dir', o.blobDir], ['--blob-inline-meta', o.blobInlineMeta], ['--compressor', o.compressor]] as const) {
      if (v) throw new NydusError('USAGE', `--blob-cache-dir cannot be used with ${k}`);
    }
    if (!o.bootstrap) throw new NydusError('USAGE', '--blob-cache-dir needs --bootstrap');
  }
  if (o.blobInlineMeta && o.bootstrap) throw new NydusError('USAGE', '--bootstrap cannot be used with --blob-inline-meta');
  if (o.blobInlineMeta && o.blobId) throw new NydusError('USAGE', '--blob-id cannot be used with --blob-inline-meta');
  if (!o.bootstrap && !o.blobDir && !o.blobInlineMeta) throw new NydusError('USAGE', 'missing --bootstrap: give -B, -D or --blob-inline-meta');
  if (!o.blob && !o.blobDir && !o.blobCacheDir && !o.blobOut) {
    throw new NydusError('USAGE', 'both --blob and --blob-dir are missing, please specify one to store the generated data blob file');
  }
  const badId = o.blobId === undefined ? undefined : badBlobId(o.blobId);
  if (badId) throw new NydusError('USAGE', `invalid --blob-id: ${badId}`);
  for (const [flag, dir] of [['--blob-dir', o.blobDir], ['--blob-cache-dir', o.blobCacheDir]] as const) {
    if (dir && !fs.existsSync(dir)) throw new NydusError('OUTPUT', 'directory does not exist', { path: dir });
    if (dir && !fs.statSync(dir).isDirectory()) throw new NydusError('OUTPUT', `${flag} is not a directory`, { path: dir });
  }
  for (const file of [o.bootstrap, o.blob]) {
    if (file && !fs.existsSync(path.dirname(path.resolve(file)))) throw new NydusError('OUTPUT', 'parent directory does not exist', { path: file });
  }
  checkNoCollision(
    [['source', typeof o.source === 'string' ? o.source : undefined], ['--parent-bootstrap', o.parentBootstrap], ['--chunk-dict', o.chunkDict && parseChunkDictArg(o.chunkDict)]],
    [['--bootstrap', o.bootstrap], ['--blob', o.blob]],
  );
}

/** Resolves prefetch patterns to tree nodes: an exact path match lists that inode. */
export function prefetchNodes(root: TreeNode, patterns: string[]): TreeNode[] {
  if (patterns.length === 0) return [];
  const byPath = new Map<string, TreeNode>();
  for (const n of walk(root)) byPath.set(n.path.toString('latin1'), n);
  const out: TreeNode[] = [];
  for (const p of patterns) {
    const key = Buffer.from('/' + p.replace(/^\/+/, '').replace(/\/+$/, ''), 'utf8').toString('latin1');
    const n = byPath.get(key === '/' ? '/' : key);
    if (n && !out.includes(n)) out.push(n.linkTo ?? n);
  }
  return out;
}

/**
 * One full collection between the streaming phase and the bootstrap layout: the heap then grows
 * from what is live (the tree) instead of from everything the walk left behind, which keeps the
 * peak RSS down. A no-op where V8 does not let us ask for it.
 */
function collectGarbage(): void {
  try {
    v8.setFlagsFromString('--expose-gc');
    (vm.runInNewContext('gc') as () => void)();
  } catch {
    // Not available: V8 collects when it sees fit.
  }
}

/** Adds chunk k to the dedup dictionary unless an equal chunk is already there. */
function addToDict(state: BuildState, k: number): void {
  const key = state.chunks[k].digest.toString('latin1');
  if (!state.dict.has(key)) state.dict.set(key, k);
}

/** Opens a parent bootstrap or chunk dict and checks it can be built on (tar-merge-export.md §5). */
async function openCompatible(file: string, what: string, chunkSize: number, explicitUidGid: boolean): Promise<RafsImage> {
  const image = (await import('../read/open.js')).openImage(file);
  if (image.chunkSize !== chunkSize) throw new NydusError('USAGE', `${what} has chunk size 0x${image.chunkSize.toString(16)}, the build uses 0x${chunkSize.toString(16)}`, { path: file });
  if (image.version !== 6) throw new NydusError('UNSUPPORTED', `${what} is RAFS v${image.version}; only v6 can be built on`, { path: file });
  if ((image.flags & ext.FLAG_TARFS_MODE) !== 0) throw new NydusError('USAGE', `${what} is a tarfs image`, { path: file });
  if (((image.flags & ext.FLAG_EXPLICIT_UID_GID) !== 0) !== explicitUidGid) {
    throw new NydusError('USAGE', `${what} ${explicitUidGid ? 'was built with --repeatable' : 'keeps uid/gid, but --repeatable was given'}`, { path: file });
  }
  return image;
}

/** Removes whiteout markers from a tree that has no lower layer; an overlayfs opaque dir stays. */
function dropWhiteouts(root: TreeNode, spec: 'oci' | 'overlayfs'): void {
  let dropped = false;
  // An explicit stack: the tree's depth comes from the input.
  const dirs = [root];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    dir.children = dir.children!.filter((c) => {
      const kind = whiteoutType(c, spec);
      const keep = kind === undefined || kind === 'overlayfs-opaque';
      if (!keep) dropped = true;
      return keep;
    });
    for (const c of dir.children) if (isDirNode(c)) dirs.push(c);
  }
  // A dropped marker may have been the first name of a hardlink group.
  if (dropped) normalizeHardlinks(root);
}

export async function create(o: CreateOptions): Promise<CreateResult> {
  validate(o);
  if (conversionByName(o.type ?? 'dir-rafs')!.name === 'tar-tarfs') return (await import('./tarfs.js')).createTarfs(o);
  if (conversionByName(o.type ?? 'dir-rafs')!.name === 'targz-ref') return (await import('./targz-ref.js')).createTargzRef(o);
  const trace = new Trace();
  const total = trace.start('total_build');
  const cacheMode = !!o.blobCacheDir;
  const compressor = compressorByName(cacheMode ? 'none' : o.compressor ?? 'zstd')!;
  const digester = digesterByName(o.digester ?? 'blake3')!;
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const inlineMeta = !!o.blobInlineMeta;
  const blobToc = !!o.blobToc;

  const conv = conversionByName(o.type ?? 'dir-rafs')!;
  const whiteouts = o.whiteoutSpec ?? 'oci';
  const state: BuildState = {
    chunkSize, compressor, digester, chunks: [], dict: new Map(),
    blob: { index: 0, chunkCount: 0, uncompressedEnd: 0, compressedEnd: 0, chunkRefs: [] },
    progress: { files: 0, bytes: 0, chunks: 0, dedupChunks: 0, dedupBytes: 0 },
    threads: o.threads ?? Math.max(1, os.availableParallelism()),
    buffers: new BufferPool(Math.max(BATCH_BYTES, chunkSize)),
    aligned: true,
    blobOrder: [],
  };

  // Candidate blobs: the parent's (in their order, used from the start), the chunk dict's (used
  // at their first hit), then our own (used at its first new chunk).
  const candidates: Array<{ info: BlobInfo; file: string } | 'own'> = [];
  let parentTree: TreeNode | undefined;
  if (o.parentBootstrap) {
    const t = trace.start('load_parent_bootstrap');
    const parent = await openCompatible(o.parentBootstrap, 'parent bootstrap', chunkSize, !o.repeatable);
    parentTree = (await import('../tree/from-image.js')).treeFromImage(parent, state.chunks, 0).root;
    for (const b of parent.blobs) {
      candidates.push({ info: b, file: o.parentBootstrap });
      state.blobOrder.push(b.index);
    }
    // A layer deduplicates against the chunks it sits on (as upstream's directory builds do).
    if (parent.digester === digester.name) for (let k = 0; k < state.chunks.length; k++) addToDict(state, k);
    t.end();
  }
  if (o.chunkDict) {
    const t = trace.start('import_chunk_dict');
    const dictFile = parseChunkDictArg(o.chunkDict);
    const dict = await openCompatible(dictFile, 'chunk dict', chunkSize, !o.repeatable);
    const base = candidates.length;
    for (const b of dict.blobs) {
      candidates.push({ info: b, file: dictFile });
      state.blobOrder.push(-1);
    }
    // Chunks of another digester can never match; upstream drops them silently too.
    if (dict.digester === digester.name) {
      for (const c of dict.chunkTable) addToDict(state, state.chunks.push({ ...c, blobIndex: c.blobIndex + base }) - 1);
    }
    t.end();
  }
  state.blob.index = candidates.length;
  candidates.push('own');
  state.blobOrder.push(-1);

  // Outputs, all under temporary names until the end.
  const opened: OutputFile[] = [];
  const track = (f: OutputFile) => (opened.push(f), f);
  try {
    let blobFile: OutputFile | undefined;
    let cacheData: OutputFile | undefined;
    if (o.blob) blobFile = track(OutputFile.open(o.blob));
    else if (o.blobDir) blobFile = track(OutputFile.temp(o.blobDir));
    else if (o.blobCacheDir) cacheData = track(OutputFile.temp(o.blobCacheDir, 'blob.data'));
    const sink: ByteSink = blobFile ?? (o.blobOut ? streamSink(o.blobOut) : { write: (_d, done) => done?.(), drain: async () => undefined });
    const writer = new BlobWriter(sink, { inlineMeta, blobToc, compressor });

    const source =
      conv.source === 'tar'
        ? (await import('../sources/tar.js')).tarSource(o.source, { gzip: 'auto', explicitUidGid: !o.repeatable })
        : dirSource(path.resolve(o.source as string), {
            zeroRootMtime: true,
            exclude: [...opened.flatMap((f) => f.paths), ...[o.bootstrap, o.blobDir && path.join(o.blobDir, '.'), o.blob].filter((p): p is string => !!p).map(realPathOf)],
          });
    const assembler = new TreeAssembler();
    const progressTimer = o.onProgress ? setInterval(() => o.onProgress!(state.progress), 200) : undefined;
    const dump = trace.start('dump_blob');
    // The tree is whole once the walk ends: it is finished and laid out while the workers still
    // compress the last batches (only chunk counts matter to the layout, and they are known).
    let root: TreeNode | undefined;
    let plan: Plan | undefined;
    const layOut = () => {
      root = assembler.finish()!;
      if (parentTree) {
        root = applyLayer(parentTree, root, whiteouts);
      } else if (conv.source === 'dir' && whiteouts !== 'none') {
        // Without a parent a directory layer's markers have nothing to act on: upstream drops them.
        dropWhiteouts(root, whiteouts);
      }
      collectGarbage();
      const planTimer = trace.start('build_bootstrap');
      plan = planBootstrap(root, 4096);
      planTimer.end();
    };
    try {
      await runPipeline({
        source,
        stages: o.stages,
        state,
        assembler,
        onWalkEnd: layOut,
        sink: blobSink({ write: (d, done) => writer.write(d, true, done), drain: (n) => writer.drain(n), rawChunk: cacheData ? (d, off) => cacheData!.writeAt(d, off) : undefined }),
      });
    } finally {
      if (progressTimer) clearInterval(progressTimer);
    }
    o.onProgress?.(state.progress);
    state.buffers.clear();
    trace.event('load_from_directory', state.progress.files);
    // Dedup is over: its index of every chunk can go.
    state.dict.clear();
    if (!plan) layOut();
    writer.writeMeta(state.blob, state.chunks);
    dump.end();

    // Blob-table order is first-use order; chunks move from candidate keys to table indexes.
    const order = state.blobOrder;
    for (const c of state.chunks) if (order[c.blobIndex] >= 0) c.blobIndex = order[c.blobIndex];
    const tableKeys = candidates.map((_, k) => k).filter((k) => order[k] >= 0).sort((a, b) => order[a] - order[b]);
    const hasBlob = state.blob.chunkCount > 0;
    const features = blobFeatures({ inlineMeta, blobToc, compressor }, state.blob.chunkCount);
    const ownEntry = (blobId: string, compressedSize: number, withToc: boolean, index: number): bt.BlobEntry => ({
      blob_id: blobId, blob_index: index, chunk_size: chunkSize, chunk_count: state.blob.chunkCount,
      compression_algo: compressor.id, digest_algo: digester.id, features,
      compressed_size: compressedSize, uncompressed_size: state.blob.uncompressedEnd,
      blob_toc_size: withToc ? writer.tocSize : 0, ci_compressor: writer.meta.ciCompressor,
      ci_offset: writer.meta.ciOffset, ci_compressed_size: writer.meta.ciCompressedSize,
      ci_uncompressed_size: writer.meta.ciUncompressedSize,
      blob_toc_digest: withToc ? writer.tocDigest : Buffer.alloc(32), blob_meta_digest: Buffer.alloc(32),
      blob_meta_size: 0, cipher_iv: Buffer.alloc(8), cipher_algo: 0,
    });
    const table = (blobId: string, compressedSize: number, withToc: boolean): bt.BlobEntry[] =>
      tableKeys.map((k, i) => {
        const c = candidates[k];
        // A blob whose bootstrap was inlined in it goes by its file's name (as upstream loads it).
        return c === 'own' ? ownEntry(blobId, compressedSize, withToc, i) : blobEntryFromInfo(c.info, i, c.file);
      });

    const flags = compressor.superFlag | digester.superFlag | ext.FLAG_ENCRYPTION_NONE;

    const prefetch = prefetchNodes(root!, o.prefetch ?? []).map((n) => plan!.byNode.get(n)!.nid);
    const bootstrapFor = (blobId: string, compressedSize: number, withToc: boolean) => emitBootstrap({
      plan: plan!, chunks: state.chunks, chunkSize, blockSize: 4096, explicitUidGid: !o.repeatable, prefetch, flags,
      blobs: table(blobId, compressedSize, withToc),
    });

    const dumpBoot = trace.start('dump_bootstrap');
    let bootstrap: Buffer;
    let blobHash: string;
    if (inlineMeta) {
      // The inlined bootstrap cannot know its own blob's id or size (blob.md §5.3).
      bootstrap = bootstrapFor('x'.repeat(64), writer.position, false);
      blobHash = writer.finish(bootstrap);
    } else {
      blobHash = writer.finish();
      bootstrap = bootstrapFor(o.blobId ?? blobHash, writer.position, true);
    }
    const blobId = o.blobId ?? blobHash;
    const blobIds = table(blobId, 0, false).map((b) => b.blob_id);

    // With the bootstrap inline in the blob and no -B, no separate bootstrap is written.
    const bootstrapPath = o.bootstrap || (!inlineMeta && o.blobDir) ? await writeBootstrap(bootstrap, o) : '';
    dumpBoot.end();

    if (o.blobOut) await endStream(o.blobOut);
    let blobPath: string | undefined;
    if (blobFile) {
      blobPath = o.blob ?? blobFileIn(o.blobDir!, blobId);
      await blobFile.commit(blobPath, !o.blob);
    }
    if (cacheData) {
      cacheData.truncate(state.blob.uncompressedEnd);
      await cacheData.commit(blobFileIn(o.blobCacheDir!, blobId, '.blob.data'), true);
      const meta = track(OutputFile.temp(o.blobCacheDir!, 'blob.meta'));
      const ci = writer.meta.table;
      meta.write(ci);
      meta.write(Buffer.alloc(Math.ceil(ci.length / 4096) * 4096 - ci.length));
      meta.write(writer.meta.header);
      await meta.commit(blobFileIn(o.blobCacheDir!, blobId, '.blob.meta'), true);
    }
    total.end();
    trace.event('blob_uncompressed_size', state.blob.uncompressedEnd);
    trace.event('dedup_uncompressed_size', state.progress.dedupBytes);
    trace.event('dedup_chunks', state.progress.dedupChunks);
    trace.event('euid', String(process.geteuid?.() ?? 0));
    trace.event('egid', String(process.getegid?.() ?? 0));
    return {
      bootstrap: bootstrapPath,
      blobs: inlineMeta && !hasBlob && blobIds.length === 0 ? [blobId] : blobIds,
      blobPath,
      blobSize: writer.position,
      compressor: compressor.name,
      fsVersion: '6',
      trace,
      ...(inlineMeta ? { inlineBootstrap: bootstrap } : {}),
      ...(state.blob.chunkCount > 0 ? { blobMeta: blobMetaFile(writer.meta.table, writer.meta.header) } : {}),
    };
  } catch (e) {
    o.blobOut?.destroy(e as Error);
    return failBuild(opened, e);
  }
}

/** The chunk-info table padded to a 4 KiB boundary, then the blob.meta header: nydusd's `<id>.blob.meta`. */
function blobMetaFile(table: Buffer, header: Buffer): Buffer {
  return Buffer.concat([table, Buffer.alloc(Math.ceil(table.length / 4096) * 4096 - table.length), header]);
}

/**
 * A ByteSink over a Writable. The pipeline reuses its buffers once a write is reported done, and
 * a stream may hold a chunk long after accepting it, so each chunk is copied; drain waits for the
 * stream's own buffer to fall to the limit, which bounds memory by what the consumer has not taken.
 */
function streamSink(out: Writable): ByteSink {
  let failure: Error | undefined;
  out.once('error', (e) => (failure ??= e));
  out.once('close', () => (failure ??= out.writableFinished ? undefined : new NydusError('OUTPUT', 'the blob stream closed before the blob was written')));
  return {
    write(data, onWritten) {
      if (failure) throw failure;
      if (data.byteLength > 0) out.write(Buffer.from(data));
      onWritten?.();
    },
    async drain(limit) {
      // 'drain' comes only after a write the stream refused, so wait only then: the stream's high-water mark is the bound.
      while (!failure && out.writableLength > limit && out.writableNeedDrain) {
        await new Promise<void>((resolve) => {
          const done = () => {
            out.off('drain', done);
            out.off('close', done);
            resolve();
          };
          out.once('drain', done);
          out.once('close', done);
        });
      }
      if (failure) throw failure;
    },
  };
}

/** Ends a blob stream and waits until everything written has been taken (or the stream failed). */
function endStream(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (out.writableFinished) return resolve();
    if (out.destroyed) return reject(out.errored ?? new NydusError('OUTPUT', 'the blob stream closed before the blob was written'));
    const onError = (e: Error) => reject(e);
    out.once('error', onError);
    out.end(() => {
      out.off('error', onError);
      resolve();
    });
  });
}

/** A build failed: its outputs leave no trace, and an fs error becomes a one-line user error. */
export async function failBuild(opened: OutputFile[], e: unknown): Promise<never> {
  for (const f of opened) await f.abort();
  if (e instanceof NydusError) throw e;
  const err = e as NodeJS.ErrnoException;
  if (err?.code && err.path) throw fsError('SOURCE', err.path, err);
  throw e;
}
