// `create -t tar-tarfs` (tar-merge-export.md §6): the tar itself is the data blob. One pass over
// the input (file, FIFO or stdin) builds the tree, notes where each regular file's bytes sit in
// the tar, hashes every byte for the blob id and copies them into the blob dir; the bootstrap
// then addresses file data in 512-byte blocks of the tar (rafs-v6.md §1, §3.3).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createHash, type Hash } from 'node:crypto';
import { compressorByName, digesterByName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { OutputFile } from '../io/atomic.js';
import { tarSource } from '../sources/tar.js';
import { TreeAssembler } from '../tree/assemble.js';
import { isRegNode, type ChunkRef, type TreeNode } from '../tree/node.js';
import { planBootstrap } from '../bootstrap/plan.js';
import { emitBootstrap } from '../bootstrap/emit.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import type { ChunkInfo } from '../read/model.js';
import type { Progress } from '../pipeline/stage.js';
import { checkV6BlobId, newBlobEntry } from './blob-table.js';
import { Trace } from './trace.js';
import { DEFAULT_CHUNK_SIZE, failBuild, prefetchNodes, type CreateOptions, type CreateResult } from './create.js';
import { writeBootstrap } from './bootstrap-file.js';

/** Tar records are 512 bytes, so the bootstrap's block is too (EROFS blkszbits 9). */
export const TARFS_BLOCK_SIZE = 512;
/** Copy bytes queued for writing before reading waits for the disk: this bounds memory. */
const COPY_BEHIND = 8 << 20;
const MAX_CHUNKS = 1 << 24;
const U32_MAX = 0xffff_ffff;
const NO_DIGEST = Buffer.alloc(32);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);

const conflict = (flag: string) => new NydusError('USAGE', `conversion type tar-tarfs conflicts with ${flag}`);

/** What upstream refuses for tar-tarfs (main.rs), in one place; compressor and digester are forced. */
function checkOptions(o: CreateOptions): void {
  const refused: Array<[string, unknown]> = [
    ['--blob', o.blob],
    ['--blob-cache-dir', o.blobCacheDir],
    ['--chunk-dict', o.chunkDict],
    ['--parent-bootstrap', o.parentBootstrap],
    ['--blob-inline-meta', o.blobInlineMeta],
    ['--features blob-toc', o.blobToc],
    ['--aligned-chunk', o.alignedChunk],
  ];
  for (const [flag, given] of refused) if (given) throw conflict(flag);
  if ((o.fsVersion ?? 6) !== 6) throw conflict(`--fs-version ${o.fsVersion}: only RAFS v6 is supported`);
  if (o.stages && o.stages.length > 0) throw new NydusError('USAGE', 'pipeline stages (--plugin) do not apply to tar-tarfs: its blob is the tar itself');
  if (!o.blobDir) throw new NydusError('USAGE', 'tar-tarfs needs --blob-dir (-D): the tar is copied there as the data blob');
  if (o.blobId !== undefined) checkV6BlobId(o.blobId, '--blob-id');
}

/** The input as upstream accepts it: a regular file, a FIFO or a character device; '-' is stdin. */
function openInput(source: string): AsyncIterable<unknown> {
  if (source === '-') return process.stdin;
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch (e) {
    throw fsError('SOURCE', source, e);
  }
  if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice()) {
    throw new NydusError('SOURCE', 'tar-tarfs reads a regular file, a FIFO or a character device (or - for stdin)', { path: source });
  }
  return fs.createReadStream(source, { highWaterMark: 256 << 10 });
}

/** What the tee has seen of the input. */
interface Seen {
  bytes: number;
  head: Buffer;
}

/** Passes the input through unchanged while hashing it and appending it to the copy. */
async function* tee(input: AsyncIterable<unknown>, copy: OutputFile, hash: Hash | undefined, seen: Seen): AsyncGenerator<Buffer> {
  for await (const piece of input) {
    const b = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
    if (b.length === 0) continue;
    if (seen.head.length < GZIP_MAGIC.length) seen.head = Buffer.concat([seen.head, b.subarray(0, GZIP_MAGIC.length)]).subarray(0, GZIP_MAGIC.length);
    seen.bytes += b.length;
    hash?.update(b);
    copy.write(b);
    await copy.drain(COPY_BEHIND);
    yield b;
  }
}

/** Chunks of one file's data, which lies at `at` in the tar: chunk k is the k-th chunk_size piece, in place. */
function chunksAt(node: TreeNode, at: number, chunkSize: number, chunks: ChunkInfo[]): ChunkRef[] {
  const count = Math.ceil(node.size / chunkSize);
  if (count > MAX_CHUNKS) throw new NydusError('SOURCE', `file size 0x${node.size.toString(16)} is too big: more than 2^24 chunks`, { path: node.path.toString() });
  if ((at + node.size) / TARFS_BLOCK_SIZE > U32_MAX) {
    throw new NydusError('UNSUPPORTED', `file data at tar offset ${at} lies past 2^32 blocks of ${TARFS_BLOCK_SIZE} bytes`, { path: node.path.toString() });
  }
  const refs: ChunkRef[] = [];
  for (let k = 0; k < count; k++) {
    const fileOffset = k * chunkSize;
    const size = Math.min(chunkSize, node.size - fileOffset);
    if (chunks.length >= MAX_CHUNKS) throw new NydusError('SOURCE', 'more than 2^24 chunks in one tar', { path: node.path.toString() });
    refs.push({ chunk: chunks.length, fileOffset });
    chunks.push({
      blobIndex: 0, index: chunks.length, digest: NO_DIGEST, flags: 0,
      compressedOffset: at + fileOffset, compressedSize: size, uncompressedOffset: at + fileOffset, uncompressedSize: size,
      fileOffset, crc32: 0,
    });
  }
  return refs;
}

export async function createTarfs(opts: CreateOptions): Promise<CreateResult> {
  // create() refuses a stream source for tar-tarfs: its chunks point into a file it names.
  const o = { ...opts, source: opts.source as string };
  checkOptions(o);
  const trace = new Trace();
  const total = trace.start('total_build');
  const blobDir = o.blobDir!;
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const compressor = compressorByName('none')!;
  const digester = digesterByName('sha256')!;
  const input = openInput(o.source);

  const opened: OutputFile[] = [];
  const track = (f: OutputFile) => (opened.push(f), f);
  const seen: Seen = { bytes: 0, head: Buffer.alloc(0) };
  try {
    // The copy goes under a temporary name; it is renamed to its id once the whole tar is read.
    const copy = track(OutputFile.temp(blobDir));
    const hash = o.blobId === undefined ? createHash('sha256') : undefined;
    const chunks: ChunkInfo[] = [];
    const assembler = new TreeAssembler();
    const progress: Progress = { files: 0, bytes: 0, chunks: 0, dedupChunks: 0, dedupBytes: 0 };
    const report = () => o.onProgress?.({ ...progress, bytes: seen.bytes, chunks: chunks.length });
    const timer = o.onProgress ? setInterval(report, 200) : undefined;

    const treeTimer = trace.start('build_tree');
    try {
      const source = tarSource(Readable.from(tee(input, copy, hash, seen)), { gzip: 'never', explicitUidGid: !o.repeatable, name: o.source });
      // A file's chunks are made once the source has moved past its data, so what a header only
      // claims (a 64 GiB member in a 2 KiB tar) is never allocated: the source refuses the tar
      // as truncated first. Still in tar order, and before any later entry, a hardlink, looks.
      let pending: { node: TreeNode; at: number } | undefined;
      const settle = () => {
        if (pending) pending.node.chunks = chunksAt(pending.node, pending.at, chunkSize, chunks);
        pending = undefined;
      };
      for await (const e of source) {
        settle();
        const node = e.node;
        // A hardlink shares its target's chunks, so a link whose target is later replaced keeps the data.
        if (isRegNode(node)) {
          if (e.dataOffset !== undefined) pending = { node, at: e.dataOffset };
          else node.chunks = node.linkTo?.chunks ?? [];
        }
        assembler.attach(node, e.parent, e.replaces);
        progress.files++;
      }
      settle();
      await copy.drain();
    } catch (e) {
      if (e instanceof NydusError && seen.head.equals(GZIP_MAGIC)) {
        throw new NydusError(e.code, `${e.message} (the input is gzip data: tar-tarfs reads a plain tar, decompress it first)`, { cause: e });
      }
      throw e;
    } finally {
      if (timer) clearInterval(timer);
    }
    report();
    treeTimer.end();
    const tarSize = seen.bytes;
    const blobId = o.blobId ?? hash!.digest('hex');

    const root = assembler.finish()!;

    // A tar without file data has no blob (upstream creates one at the first chunk).
    const blobs: bt.BlobEntry[] = [];
    if (chunks.length > 0) {
      if (tarSize / TARFS_BLOCK_SIZE > U32_MAX) throw new NydusError('UNSUPPORTED', `a tar of ${tarSize} bytes is more than 2^32 blocks of ${TARFS_BLOCK_SIZE} bytes`, { path: o.source });
      blobs.push(newBlobEntry({
        blob_id: blobId, blob_index: 0, chunk_size: chunkSize, chunk_count: chunks.length,
        compression_algo: compressor.id, digest_algo: digester.id,
        features: bt.FEATURE_CAP_TAR_TOC | bt.FEATURE_TARFS,
        compressed_size: tarSize, uncompressed_size: tarSize,
        // No blob.meta: upstream leaves its default header in the entry, whose ci_compressor is lz4_block.
        ci_compressor: compressorByName('lz4_block')!.id,
      }));
    }

    const flags = compressor.superFlag | digester.superFlag | ext.FLAG_ENCRYPTION_NONE | ext.FLAG_TARFS_MODE;

    const planTimer = trace.start('build_bootstrap');
    const plan = planBootstrap(root, TARFS_BLOCK_SIZE);
    planTimer.end();
    const prefetch = prefetchNodes(root, o.prefetch ?? []).map((n) => plan.byNode.get(n)!.nid);
    const bootstrap = emitBootstrap({
      plan, chunks, chunkSize, blockSize: TARFS_BLOCK_SIZE, explicitUidGid: !o.repeatable, prefetch, blobs, flags,
    });

    // The blob first, so a bootstrap under its final name always has its tar beside it. A
    // content-addressed name that exists already holds these bytes; a given id is replaced.
    const blobPath = path.join(blobDir, blobId);
    const blobTimer = trace.start('dump_blob');
    await copy.commit(blobPath, o.blobId === undefined);
    blobTimer.end();
    const dumpTimer = trace.start('dump_bootstrap');
    const bootstrapPath = await writeBootstrap(bootstrap, { bootstrap: o.bootstrap, blobDir });
    dumpTimer.end();

    total.end();
    trace.event('euid', String(process.geteuid?.() ?? 0));
    trace.event('egid', String(process.getegid?.() ?? 0));
    return {
      bootstrap: bootstrapPath,
      blobs: blobs.map((b) => b.blob_id),
      blobPath,
      blobSize: blobs.length > 0 ? tarSize : 0,
      compressor: compressor.name,
      fsVersion: '6',
      trace,
    };
  } catch (e) {
    return failBuild(opened, e);
  }
}
