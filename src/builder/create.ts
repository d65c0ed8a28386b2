// `create`: source -> pipeline -> blob trailer -> bootstrap, optionally on a parent bootstrap and
// with a chunk dict; every output stays under a temporary name until the build has succeeded.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import type { Writable } from 'node:stream';
import { compressorByName, digesterByName, type CompressorName, type DigesterName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { OutputFile } from '../io/atomic.js';
import { checkNoCollision, realPathOf } from '../io/collide.js';
import { dirSource } from '../sources/dir.js';
import { TreeAssembler } from '../tree/assemble.js';
import { PathLookup, isDirNode, type TreeNode } from '../tree/node.js';
import { runPipeline } from '../pipeline/compose.js';
import { blobSink } from '../pipeline/stages/sink.js';
import type { BuildState, PendingChunk, StageDef } from '../pipeline/stage.js';
import type { ChunkPool } from '../pipeline/pool.js';
import { BufferPool } from '../pipeline/buffers.js';
import { BATCH_BYTES } from '../pipeline/stages/chunk.js';
import { poolWindow } from '../pipeline/window.js';
import { BlobWriter, blobFeatures, type ByteSink } from './blob.js';
import { chunkPacker } from './pack.js';
import { CIPHER_AES128XTS, CIPHER_NONE, newBlobCipher } from '../algo/cipher.js';
import { planSteps, type Plan } from '../bootstrap/plan.js';
import { emitBootstrap, metaShift, prepareSteps, writePreparedChunks, type PreparedArea } from '../bootstrap/emit.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import { Trace } from './trace.js';
import { releaseFreePages } from '../io/trim.js';
import { conversionByName, type Conversion } from './conversions.js';
import { blobEntryFromInfo, blobFileIn, loadedBlobId, newBlobEntry } from './blob-table.js';
import { badBlobId } from '../format/limits.js';
import { parseChunkDictArg } from './chunk-dict-arg.js';
import type { BlobInfo, RafsImage } from '../read/model.js';
import { applyLayer, normalizeHardlinks, whiteoutType } from '../tree/overlay.js';
import { writeBootstrap } from './bootstrap-file.js';
import { DigestMap } from '../pipeline/digest-map.js';
import { tuneCompiler } from '../io/compiler.js';
import { native } from '../io/native.js';

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
  /** Called with the blob id once blobOut has taken every byte, before the bootstrap is written (a backend commits the upload here). */
  blobEnd?: (blobId: string) => Promise<void>;
  blobCacheDir?: string;
  blobInlineMeta?: boolean;
  blobToc?: boolean;
  blobId?: string;
  fsVersion?: number;
  compressor?: CompressorName;
  digester?: DigesterName;
  chunkSize?: number;
  /** `--batch-size`: 0 (default), or a power of two from 0x1000 to the chunk size; small files' chunks are compressed together. */
  batchSize?: number;
  /** `--encrypt`: chunks and blob.meta encrypted with AES-128-XTS under a per-blob key kept in the bootstrap. */
  encrypt?: boolean;
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
  /**
   * Compression worker threads; default: one per core, none for a build whose chunks come to
   * less than 32 MiB (it runs on the calling thread alone: see INLINE_BELOW).
   */
  threads?: number;
  /** Build under 32 MiB of chunks on the calling thread even with `threads` given (nydusify's layers); default: only without `threads`. */
  inlineSmall?: boolean;
  /**
   * A worker pool shared with other builds running at the same time (nydusify's layers), started
   * and ended by the caller: the build's workers are its threads (`threads` is not read).
   */
  pool?: ChunkPool;
  /** Called as the build moves, for progress display. */
  onProgress?: (p: BuildState['progress']) => void;
  /** estargztoc-ref / stargz_index: where the eStargz blob's chunk data ends (--blob-data-size). */
  blobDataSize?: number;
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
  fsVersion: '5' | '6';
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

/**
 * Bytes the blob's writer thread may have queued before the pipeline waits for it: enough for the
 * thread to be left unscheduled for a while (it shares the cores with the workers) without
 * holding the pipeline back (see poolWindow).
 */
const WRITER_THREAD_BEHIND = 16 << 20;

/**
 * Without --threads, a build whose chunks come to less than this runs on the main thread alone
 * (no worker pool, no writer thread): on 2 cores, trees of 4 to 40 MB built 15-35% faster so
 * (bench/README.md), and at 93 MB the two ways took as long.
 */
export const INLINE_BELOW = 32 << 20;

export function checkChunkSize(n: number): void {
  if (!Number.isInteger(n) || n < 0x1000 || n > 0x1000000 || (n & (n - 1)) !== 0) {
    throw new NydusError('USAGE', `invalid chunk size 0x${Number.isFinite(n) ? n.toString(16) : n}: must be a power of two from 0x1000 to 0x1000000`);
  }
}

/** `--batch-size` (blob.md §7.1): 0, or a power of two from 0x1000 to 0x1000000 and not above the chunk size. */
export function checkBatchSize(n: number, chunkSize: number): void {
  const hex = Number.isFinite(n) ? `0x${n.toString(16)}` : String(n);
  if (n === 0) return;
  if (!Number.isInteger(n) || n < 0x1000 || n > 0x1000000 || (n & (n - 1)) !== 0) {
    throw new NydusError('USAGE', `invalid batch size ${hex}: must be 0 or a power of two from 0x1000 to 0x1000000`);
  }
  if (n > chunkSize) throw new NydusError('USAGE', `batch size ${hex} is bigger than chunk size 0x${chunkSize.toString(16)}`);
}

/** Checks the options against the conversion they name; returns that conversion. */
function validate(o: CreateOptions): Conversion {
  const conv = conversionByName(o.type ?? 'dir-rafs');
  if (!conv) throw new NydusError('USAGE', `unknown conversion type ${JSON.stringify(o.type)}`);
  if (!conv.implemented) throw new NydusError('UNSUPPORTED', `conversion type ${conv.name} is not supported yet`);
  if (typeof o.source !== 'string' && (conv.source !== 'tar' || conv.name === 'tar-tarfs')) {
    throw new NydusError('USAGE', `conversion type ${conv.name} reads a path, not a stream`);
  }
  if (o.blobOut && (o.blob || o.blobDir || o.blobCacheDir)) throw new NydusError('USAGE', 'a blob stream cannot be used with --blob, --blob-dir or --blob-cache-dir');
  const version = o.fsVersion ?? 6;
  if (version !== 5 && version !== 6) throw new NydusError('USAGE', `invalid fs version ${o.fsVersion}: must be 5 or 6`);
  if (version === 5) {
    if (o.blobToc) throw new NydusError('USAGE', '`--features blob-toc` can\'t be used with `--fs-version 5`');
    // The blob cache is what the kernel's EROFS reads through fscache: a RAFS v6 thing.
    if (o.blobCacheDir) throw new NydusError('UNSUPPORTED', '--blob-cache-dir is not supported with --fs-version 5: it serves RAFS v6 images to the kernel');
    if ((o.batchSize ?? 0) > 0) throw new NydusError('USAGE', '`--batch-size` with non-zero value conflicts with `--fs-version 5`');
    // RAFS v5 chunk infos have no cipher context (upstream encrypts v6 blobs only).
    if (o.encrypt) throw new NydusError('USAGE', '`--encrypt` conflicts with `--fs-version 5`');
  }
  checkChunkSize(o.chunkSize ?? DEFAULT_CHUNK_SIZE);
  checkBatchSize(o.batchSize ?? 0, o.chunkSize ?? DEFAULT_CHUNK_SIZE);
  if ((o.batchSize ?? 0) > 0 && conv.name === 'tar-tarfs') throw new NydusError('USAGE', `--batch-size cannot be used with conversion type ${conv.name}`);
  if (o.encrypt && conv.name === 'tar-tarfs') throw new NydusError('USAGE', `conversion type '${conv.name}' conflicts with '--encrypt'`);
  // The cache files are the plain data nydusd would hold after decrypting: no blob is written to encrypt.
  if (o.encrypt && o.blobCacheDir) throw new NydusError('USAGE', '--encrypt cannot be used with --blob-cache-dir (no blob is written there, only plain cache files)');
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
  checkLayerId(o.blobId);
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
  return conv;
}

/** Upstream's note (docs/nydus-image.md) for a layer id given as an OCI digest. */
export const SHA256_PREFIX_NOTE = 'the argument value of image layer id specified in nydus-image CLI should omit `sha256:` prefix';

/** Refuses a --blob-id spelled as an OCI digest ("sha256:<hex>") with upstream's note. */
export function checkLayerId(id: string | undefined): void {
  if (id !== undefined && id.startsWith('sha256:')) throw new NydusError('USAGE', `invalid --blob-id ${JSON.stringify(id.slice(0, 80))}: ${SHA256_PREFIX_NOTE}`);
}

/** Resolves prefetch patterns to tree nodes: an exact path match lists that inode. */
export function prefetchNodes(root: TreeNode, patterns: string[]): TreeNode[] {
  if (patterns.length === 0) return [];
  const lookup = new PathLookup(root);
  const out: TreeNode[] = [];
  for (const p of patterns) {
    const n = lookup.get(Buffer.from('/' + p.replace(/^\/+/, '').replace(/\/+$/, ''), 'utf8').toString('latin1'));
    if (n && !out.includes(n)) out.push(n.linkTo ?? n);
  }
  return out;
}

/**
 * One full collection between the streaming phase and the bootstrap layout: the heap then grows
 * from what is live (the tree) instead of from everything the walk left behind, which keeps the
 * peak RSS down. Asked of V8 as memory pressure, so it marks on its helper threads while the
 * layout goes on, then compacts in a short pause: a forced collection (gc() through --expose-gc)
 * stopped the main thread ~31 ms on /usr/share, and this peaks ~8 MB lower (bench/README.md).
 */
function collectGarbage(): void {
  // A small heap (with the buffers it holds outside it) has little to give back, and a full
  // collection still costs ~10 ms: most of what an empty or small build spends after the CLI starts.
  const { heapUsed, external } = process.memoryUsage();
  if (heapUsed + external < 32 * 1024 * 1024) return;
  native.memoryPressure();
}

/** Adds chunk k to the dedup dictionary unless an equal chunk is already there. */
function addToDict(state: BuildState, k: number): void {
  const d = state.chunks[k].digest;
  if (!state.dict.has(d)) state.dict.set(d, k);
}

/** Opens a parent bootstrap or chunk dict and checks it can be built on (tar-merge-export.md §5). */
export async function openCompatible(file: string, what: string, chunkSize: number, explicitUidGid: boolean, version: number, digester: DigesterName): Promise<RafsImage> {
  const image = (await import('../read/open.js')).openImage(file);
  if (image.chunkSize !== chunkSize) throw new NydusError('USAGE', `${what} has chunk size 0x${image.chunkSize.toString(16)}, the build uses 0x${chunkSize.toString(16)}`, { path: file });
  if (image.version !== version) throw new NydusError('USAGE', `${what} is RAFS v${image.version}, the build makes RAFS v${version}`, { path: file });
  // RAFS v5 inode digests are made with the image's digester, so a v5 layer must keep it.
  if (version === 5 && image.digester !== digester) throw new NydusError('USAGE', `${what} uses digester ${image.digester}, the build uses ${digester}`, { path: file });
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
  tuneCompiler();
  // The eStargz TOC types write a bootstrap only and check their own options.
  if (conversionByName(o.type ?? 'dir-rafs')?.source === 'stargz') return (await import('./stargz.js')).createStargzIndex(o);
  const conv = validate(o);
  if (conv.name === 'tar-tarfs') return (await import('./tarfs.js')).createTarfs(o);
  if (conv.name === 'targz-ref') return (await import('./targz-ref.js')).createTargzRef(o);
  const trace = new Trace();
  const total = trace.start('total_build');
  const cacheMode = !!o.blobCacheDir;
  const compressor = compressorByName(cacheMode ? 'none' : o.compressor ?? 'zstd')!;
  const digester = digesterByName(o.digester ?? 'blake3')!;
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const v5 = o.fsVersion === 5;
  // RAFS v5's writer loads only for a v5 build.
  const v5Writer = v5 ? await import('../bootstrap/v5.js') : undefined;
  const inlineMeta = !!o.blobInlineMeta;
  const blobToc = !!o.blobToc;
  const batchSize = o.batchSize ?? 0;
  const cipher = o.encrypt ? newBlobCipher() : undefined;
  const packer = chunkPacker(batchSize, compressor, cipher);

  const whiteouts = o.whiteoutSpec ?? 'oci';
  const threads = o.pool ? o.pool.threads : (o.threads ?? Math.max(1, os.availableParallelism()));
  const batchCapacity = Math.max(BATCH_BYTES, chunkSize);
  const state: BuildState = {
    chunkSize, compressor, digester, chunks: [], dict: new DigestMap(),
    blob: {
      index: 0, chunkCount: 0, uncompressedEnd: 0, compressedEnd: 0, chunkRefs: [],
      // blob.meta's v1 table, written as the chunks land (v5 has none; a packer makes v2).
      ...(!v5 && !packer ? { metaEntries: { bytes: Buffer.alloc(0), view: new DataView(new ArrayBuffer(0)), count: 0 } } : {}),
    },
    progress: { files: 0, bytes: 0, chunks: 0, dedupChunks: 0, dedupBytes: 0 },
    threads,
    // Shared with the worker threads when there are any (buffers.ts says why). With them, as many
    // are kept for reuse as the pool's tasks and the writer thread's queue can hold between them.
    buffers: new BufferPool(batchCapacity, threads > 0 ? poolWindow(threads) + Math.ceil(WRITER_THREAD_BEHIND / batchCapacity) : undefined, threads > 0),
    // v6 always aligns chunks to 4 KiB; v5 packs them unless --aligned-chunk.
    aligned: v5 ? !!o.alignedChunk : true,
    blobOrder: [],
    ...(packer?.batching ? { batched: (c: PendingChunk) => packer.batchable(c.size, c.node.size, chunkSize) } : {}),
  };

  // Candidate blobs: the parent's (in their order, used from the start), the chunk dict's (used
  // at their first hit), then our own (used at its first new chunk).
  const candidates: Array<{ info: BlobInfo; file: string } | 'own'> = [];
  let parentTree: TreeNode | undefined;
  if (o.parentBootstrap) {
    const t = trace.start('load_parent_bootstrap');
    const parent = await openCompatible(o.parentBootstrap, 'parent bootstrap', chunkSize, !o.repeatable, v5 ? 5 : 6, digester.name);
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
    const dict = await openCompatible(dictFile, 'chunk dict', chunkSize, !o.repeatable, v5 ? 5 : 6, digester.name);
    // A dict blob the parent already lists is that candidate, not a second table entry (as
    // upstream's extend_from_chunk_dict adds only blobs it does not have).
    const known = new Map(candidates.map((c, k) => [c === 'own' ? '' : loadedBlobId(c.info, c.file), k] as const));
    const keyOf = dict.blobs.map((b) => {
      const id = loadedBlobId(b, dictFile);
      const k = known.get(id);
      if (k !== undefined) return k;
      state.blobOrder.push(-1);
      known.set(id, candidates.length);
      return candidates.push({ info: b, file: dictFile }) - 1;
    });
    // Chunks of another digester can never match; upstream drops them silently too.
    if (dict.digester === digester.name) {
      for (const c of dict.chunkTable) addToDict(state, state.chunks.push({ ...c, blobIndex: keyOf[c.blobIndex] }) - 1);
    }
    t.end();
  }
  state.blob.index = candidates.length;
  candidates.push('own');
  state.blobOrder.push(-1);

  // Outputs, all under temporary names until the end.
  const opened: OutputFile[] = [];
  const track = (f: OutputFile) => (opened.push(f), f);
  let blobThread: import('../io/blob-thread.js').BlobThread | undefined;
  /** The worker pool's shutdown, under way while the bootstrap is laid out and written. */
  let poolClosed: Promise<void> | undefined;
  /** The same for the blob's writer thread, once it has written everything. */
  let threadClosed: Promise<void> | undefined;
  try {
    let blobFile: OutputFile | undefined;
    let cacheData: OutputFile | undefined;
    if (o.blob) blobFile = track(OutputFile.open(o.blob));
    else if (o.blobDir) blobFile = track(OutputFile.temp(o.blobDir));
    else if (o.blobCacheDir) cacheData = track(OutputFile.temp(o.blobCacheDir, 'blob.data'));
    const sink: ByteSink = blobFile ?? (o.blobOut ? streamSink(o.blobOut) : { write: (_d, done) => done?.(), drain: async () => undefined });
    // A build with workers hashes (and writes, to a file) the blob on a thread of its own; the
    // main thread keeps walking and dispatching.
    if (state.threads > 0) {
      const { BlobThread } = await import('../io/blob-thread.js');
      blobThread = new BlobThread(blobFile ? blobFile.descriptor : -1, blobFile?.name ?? 'blob');
    }
    const writer = new BlobWriter(sink, { inlineMeta, blobToc, compressor, blobMeta: !v5, batch: batchSize > 0, cipher }, blobThread && { thread: blobThread, writes: !!blobFile });

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
    // The tree is whole once the walk ends, and the walk runs ahead of the workers (runPipeline):
    // the tree is finished, laid out and its chunk-independent bootstrap bytes written while they
    // still have batches to compress, in steps between which the pipeline goes on (only chunk
    // counts matter to the layout, and they are known). After the last chunk only the chunk
    // indexes and the tables are left.
    let root: TreeNode | undefined;
    let plan: Plan | undefined;
    let tarHardlinks: Set<TreeNode> | undefined;
    let prepared: PreparedArea | undefined;
    let prefetchList: TreeNode[] | undefined;
    // Chunk indexes can be written as files complete when a chunk's record is final once dedup has
    // made it: not with a packer (it places chunks later), a chunk dict (its blobs' table indexes
    // come by first use) or a plugin's batch stage after dedup.
    const earlyIndexes = !v5 && !packer && !o.chunkDict && !(o.stages ?? []).some((st) => st.kind === 'batch');
    /** The layout under way (it pauses between steps, so the pipeline goes on meanwhile). */
    let layingOut: Promise<void> | undefined;
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
    /** Runs work that pauses (a generator's yields), with a turn of the event loop at each pause. */
    const stepped = async <T>(steps: Generator<void, T, void>): Promise<T> => {
      for (;;) {
        const step = steps.next();
        if (step.done) return step.value;
        await turn();
      }
    };
    const layOut = async () => {
      root = assembler.finish()!;
      if (v5 && conv.source === 'tar') tarHardlinks = v5Writer!.markTarInodesV5(root);
      if (parentTree) {
        root = applyLayer(parentTree, root, whiteouts);
      } else if (conv.source === 'dir' && whiteouts !== 'none') {
        // Without a parent a directory layer's markers have nothing to act on: upstream drops them.
        dropWhiteouts(root, whiteouts);
      }
      await turn();
      collectGarbage();
      releaseFreePages();
      // v5 records are laid out as they are written (emitBootstrapV5).
      if (v5) return;
      const planTimer = trace.start('build_bootstrap');
      plan = await stepped(planSteps(root, 4096));
      // What of the bootstrap does not depend on the chunks is written now too, for the meta
      // shift the table of blobs will most likely need: the blobs in use so far, and this
      // build's own if it has bytes to store (emitBootstrap checks the guess).
      prefetchList = prefetchNodes(root, o.prefetch ?? []);
      const inUse = state.blobOrder.filter((k) => k >= 0).length + (state.blobOrder[state.blob.index] < 0 && state.progress.bytes > 0 ? 1 : 0);
      prepared = await stepped(prepareSteps(plan, {
        shift: metaShift(inUse, prefetchList.length), blockSize: 4096, explicitUidGid: !o.repeatable, chunkSize,
        chunks: earlyIndexes ? state.chunks : undefined,
      }));
      planTimer.end();
    };
    try {
      ({ closed: poolClosed } = await runPipeline({
        source,
        stages: o.stages,
        state,
        inlineBelow: (o.inlineSmall ?? (o.threads === undefined && !o.pool)) ? INLINE_BELOW : undefined,
        pool: o.pool,
        onInline: () => writer.inline(),
        assembler,
        onWalkEnd: () => {
          layingOut = layOut();
          // Awaited once the pipeline is done; a failure meanwhile is not unhandled.
          layingOut.catch(() => undefined);
        },
        // Once laid out, a file's chunk indexes are written as its last chunk gets its record.
        onDeduped: earlyIndexes
          ? (b) => {
              if (!prepared || !plan) return;
              for (const c of b.chunks) {
                if (c.fileOffset + c.size < c.node.size) continue;
                const k = plan.position.get(c.node);
                if (k !== undefined && !prepared.chunksWritten[k]) writePreparedChunks(prepared, k, state.chunks, chunkSize);
              }
            }
          : undefined,
        sink: blobSink({
          write: (d, done) => writer.write(d, true, done), drain: (n) => writer.drain(n),
          // A writer thread competes for the cores: more slack, so the walk does not stop each time it is descheduled.
          writeBehind: blobThread ? WRITER_THREAD_BEHIND : undefined,
          rawChunk: cacheData ? (d, off) => cacheData!.writeAt(d, off) : undefined,
          packer,
        }),
      }));
    } finally {
      if (progressTimer) clearInterval(progressTimer);
    }
    o.onProgress?.(state.progress);
    state.buffers.clear();
    trace.event('load_from_directory', state.progress.files);
    // Dedup is over: its index of every chunk can go.
    state.dict.clear();
    await (layingOut ??= layOut());
    await writer.writeMeta(state.blob, state.chunks, packer);
    // The workers are done: what they freed goes back before the bootstrap is built.
    releaseFreePages();
    dump.end();

    // Blob-table order is first-use order; chunks move from candidate keys to table indexes.
    const order = state.blobOrder;
    // Chunk indexes written early named blobs by candidate key: they stand only if the keys are the table's indexes.
    if (prepared && !order.every((v, k) => v < 0 || v === k)) prepared.chunksWritten.fill(0);
    for (const c of state.chunks) if (order[c.blobIndex] >= 0) c.blobIndex = order[c.blobIndex];
    const tableKeys = candidates.map((_, k) => k).filter((k) => order[k] >= 0).sort((a, b) => order[a] - order[b]);
    const hasBlob = state.blob.chunkCount > 0;
    const features = blobFeatures({ inlineMeta, blobToc, compressor, blobMeta: !v5, batch: batchSize > 0, cipher }, state.blob.chunkCount);
    const ownEntry = (blobId: string, compressedSize: number, withToc: boolean, index: number): bt.BlobEntry => newBlobEntry({
      blob_id: blobId, blob_index: index, chunk_size: chunkSize, chunk_count: state.blob.chunkCount,
      compression_algo: compressor.id, digest_algo: digester.id, features,
      compressed_size: compressedSize, uncompressed_size: state.blob.uncompressedEnd,
      ...(withToc ? { blob_toc_size: writer.tocSize, blob_toc_digest: writer.tocDigest } : {}),
      // An encrypted blob's key and IV live in these fields (rafs-v6.md §6).
      ...(cipher ? { blob_meta_digest: cipher.key, cipher_iv: cipher.iv, cipher_algo: CIPHER_AES128XTS } : {}),
    }, writer.meta);
    const table = (blobId: string, compressedSize: number, withToc: boolean): bt.BlobEntry[] =>
      tableKeys.map((k, i) => {
        const c = candidates[k];
        // A blob whose bootstrap was inlined in it goes by its file's name (as upstream loads it).
        return c === 'own' ? ownEntry(blobId, compressedSize, withToc, i) : blobEntryFromInfo(c.info, i, c.file);
      });

    // Encrypted when this blob is, or when a parent's or dict's blob in the table is (as merge decides).
    const encrypted = !!cipher || tableKeys.some((k) => candidates[k] !== 'own' && ((candidates[k] as { info: BlobInfo }).info.cipherAlgo ?? 0) !== CIPHER_NONE);
    const flags = compressor.superFlag | digester.superFlag | (encrypted ? ext.FLAG_ENCRYPTION_AES128XTS : ext.FLAG_ENCRYPTION_NONE);

    prefetchList ??= prefetchNodes(root!, o.prefetch ?? []);
    const bootstrapFor = (blobId: string, compressedSize: number, withToc: boolean) => v5
      ? v5Writer!.emitBootstrapV5({
          root: root!, chunks: state.chunks, chunkSize, explicitUidGid: !o.repeatable, digester,
          prefetch: prefetchList!, flags: compressor.superFlag | digester.superFlag, hardlinkFlagged: tarHardlinks,
          blobs: table(blobId, compressedSize, withToc).map(v5Writer!.v5Blob),
        })
      : emitBootstrap({
          plan: plan!, chunks: state.chunks, chunkSize, blockSize: 4096, explicitUidGid: !o.repeatable, flags,
          prefetch: prefetchList!.map((n) => plan!.byNode.get(n)!.nid),
          blobs: table(blobId, compressedSize, withToc),
        }, prepared);

    const dumpBoot = trace.start('dump_bootstrap');
    let bootstrap: Buffer;
    let blobHash: string;
    if (inlineMeta) {
      // The inlined bootstrap cannot know its own blob's id or size (blob.md §5.3).
      bootstrap = bootstrapFor('x'.repeat(64), writer.position, false);
      blobHash = await writer.finish(bootstrap);
    } else {
      blobHash = await writer.finish();
      bootstrap = bootstrapFor(o.blobId ?? blobHash, writer.position, true);
    }
    const blobId = o.blobId ?? blobHash;
    const blobIds = table(blobId, 0, false).map((b) => b.blob_id);
    // The final digest came after every write: the thread is done with the blob.
    threadClosed = blobThread?.close();
    blobThread = undefined;

    // A streamed blob is whole (and stored, when blobEnd says so) before the bootstrap naming it
    // exists: the bootstrap is written to its temporary name while the backend commits.
    if (o.blobOut) await endStream(o.blobOut);
    const stored = o.blobOut ? o.blobEnd?.(blobId) : undefined;
    stored?.catch(() => undefined);
    // With the bootstrap inline in the blob and no -B, no separate bootstrap is written.
    let bootstrapPath = '';
    try {
      if (o.bootstrap || (!inlineMeta && o.blobDir)) bootstrapPath = await writeBootstrap(bootstrap, o, stored);
    } catch (e) {
      // The commit ends first, so an abort that follows does not race it.
      await stored?.catch(() => undefined);
      throw e;
    }
    await stored;
    dumpBoot.end();

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
    await Promise.all([poolClosed, threadClosed]);
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
      fsVersion: v5 ? '5' : '6',
      trace,
      ...(inlineMeta ? { inlineBootstrap: bootstrap } : {}),
      ...(state.blob.chunkCount > 0 && !v5 ? { blobMeta: blobMetaFile(writer.meta.table, writer.meta.header) } : {}),
    };
  } catch (e) {
    // Its writes stop before the outputs go.
    await Promise.allSettled([blobThread?.close(), poolClosed, threadClosed]);
    o.blobOut?.destroy(e as Error);
    return failBuild(opened, e);
  }
}

/** The chunk-info table padded to a 4 KiB boundary, then the blob.meta header: nydusd's `<id>.blob.meta`. */
function blobMetaFile(table: Buffer, header: Buffer): Buffer {
  return Buffer.concat([table, Buffer.alloc(Math.ceil(table.length / 4096) * 4096 - table.length), header]);
}

/**
 * A Writable that also takes bytes synchronously, copying them at once (a backend upload's
 * stream, src/backends/multipart.ts): written through take, a chunk is copied once, not twice.
 */
interface TakingWritable extends Writable {
  take(data: Uint8Array): void;
  room(): Promise<void>;
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
  const taking = out as Partial<TakingWritable>;
  if (typeof taking.take === 'function' && typeof taking.room === 'function') {
    return {
      write(data, onWritten) {
        if (failure) throw failure;
        taking.take!(data);
        onWritten?.();
      },
      drain: () => taking.room!(),
    };
  }
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
    out.end((err?: Error | null) => {
      out.off('error', onError);
      if (err) reject(err);
      else resolve();
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
