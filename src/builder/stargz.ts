// `create --type stargz_index` (= `estargztoc-ref`; upstream builder/src/stargz.rs and main.rs):
// a RAFS v6 bootstrap whose chunks are the gzip members of an eStargz blob, built from the blob's
// TOC. No data blob is written: the eStargz layer is the blob, named by --blob-id. SOURCE is the
// TOC (stargz.index.json, as upstream and the snapshotter give it) or the eStargz blob itself,
// whose footer locates the TOC; then the blob's own size bounds its chunks and its sha256 is the id.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { compressorByName, digesterByName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { LIMITS, checkLimit, limitError } from '../format/limits.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import * as bci from '../format/blob/chunk-info.js';
import * as tarHeader from '../format/tar/header.js';
import { FOOTER_SIZE, memberHeaderLength, parseFooter } from '../format/stargz/gzip.js';
import { parseToc, type Toc } from '../format/stargz/toc.js';
import { stargzTree } from '../sources/stargz.js';
import { planBootstrap } from '../bootstrap/plan.js';
import { emitBootstrap } from '../bootstrap/emit.js';
import { applyLayer } from '../tree/overlay.js';
import type { ChunkInfo } from '../read/model.js';
import { walk, type TreeNode } from '../tree/node.js';
import { blobEntryFromInfo, newBlobEntry } from './blob-table.js';
import { writeBootstrap } from './bootstrap-file.js';
import { Trace } from './trace.js';
import { checkChunkSize, checkLayerId, openCompatible, prefetchNodes, type CreateOptions, type CreateResult } from './create.js';
import { badBlobId } from '../format/limits.js';

/** Upstream's default chunk size for this type (main.rs get_chunk_size): eStargz's own 4 MiB chunks. */
export const STARGZ_CHUNK_SIZE = 0x400000;
const TYPE = 'estargztoc-ref';
const TOC_TAR_NAME = 'stargz.index.json';
const HASH_PIECE = 1 << 20;

const conflict = (flag: string) => new NydusError('USAGE', `conversion type '${TYPE}' conflicts with '${flag}'`);

/** What upstream refuses for this type, and what has no meaning without a data blob. */
function checkOptions(o: CreateOptions): void {
  if (typeof o.source !== 'string') throw new NydusError('USAGE', `conversion type ${TYPE} reads a path, not a stream`);
  if (o.blob || o.blobCacheDir || o.blobOut) throw conflict('--blob\' and \'--blob-cache-dir');
  for (const [flag, given] of [['--blob-inline-meta', o.blobInlineMeta], ['--features blob-toc', o.blobToc], ['--chunk-dict', o.chunkDict]] as const) {
    if (given) throw conflict(flag);
  }
  if ((o.fsVersion ?? 6) !== 6) throw new NydusError('USAGE', `'--fs-version ${o.fsVersion}' conflicts with conversion type '${TYPE}', only V6 is supported`);
  if (o.stages && o.stages.length > 0) throw new NydusError('USAGE', `pipeline stages (--plugin) do not apply to ${TYPE}: no data is read`);
  if (!o.bootstrap && !o.blobDir) throw new NydusError('USAGE', 'missing --bootstrap: give -B or -D');
  checkChunkSize(o.chunkSize ?? STARGZ_CHUNK_SIZE);
  checkLayerId(o.blobId);
  if (o.blobId !== undefined) {
    const bad = badBlobId(o.blobId);
    if (bad) throw new NydusError('USAGE', `invalid --blob-id: ${bad}`);
  }
  if (o.blobDataSize !== undefined && (!Number.isSafeInteger(o.blobDataSize) || o.blobDataSize <= 0)) {
    throw new NydusError('USAGE', `invalid blob data size ${o.blobDataSize}`);
  }
}

/** The eStargz blob's size, its TOC and its sha256. */
interface BlobSource {
  size: number;
  tocOffset: number;
  sha256: string;
}

function openOrFail(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    throw fsError('SOURCE', file, e);
  }
}

function readAt(fd: number, file: string, off: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  let got = 0;
  try {
    while (got < len) {
      const n = fs.readSync(fd, b, got, len - got, off + got);
      if (n === 0) break;
      got += n;
    }
  } catch (e) {
    throw fsError('SOURCE', file, e);
  }
  if (got < len) throw new NydusError('SOURCE', `file ended at ${off + got} while reading ${len} bytes at ${off}`, { path: file });
  return b;
}

/** Finds the TOC through the footer, inflates its gzip member and takes stargz.index.json out of its tar. */
function tocOfBlob(fd: number, file: string, size: number): { text: string; tocOffset: number } {
  const tail = readAt(fd, file, Math.max(0, size - FOOTER_SIZE), Math.min(size, FOOTER_SIZE));
  const footer = parseFooter(tail);
  if (!footer) throw new NydusError('FORMAT', 'not an eStargz blob: no eStargz or stargz footer in its last bytes (truncated?)', { path: file });
  const end = size - footer.footerSize;
  if (footer.tocOffset >= end) throw new NydusError('FORMAT', `stargz footer: TOC offset ${footer.tocOffset} lies past the end of the blob data (${end} bytes before the footer)`, { path: file });
  const stored = end - footer.tocOffset;
  if (stored > LIMITS.STARGZ_TOC_MAX.value) throw limitError('STARGZ_TOC_MAX', `${file}: gzip TOC member`, stored);
  const member = readAt(fd, file, footer.tocOffset, stored);
  const where = `TOC gzip member at offset ${footer.tocOffset}`;
  let tar: Buffer;
  try {
    tar = zlib.inflateRawSync(member.subarray(memberHeaderLength(member, `${file}: ${where}`)), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: LIMITS.STARGZ_TOC_MAX.value + 3 * tarHeader.BLOCK,
    });
  } catch (e) {
    if (e instanceof NydusError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw limitError('STARGZ_TOC_MAX', `${file}: TOC`, `more than ${LIMITS.STARGZ_TOC_MAX.value} bytes`);
    throw new NydusError('FORMAT', `${where}: corrupt gzip data: ${(e as Error).message.split('\n')[0]}`, { path: file });
  }
  if (tar.length < tarHeader.BLOCK) throw new NydusError('FORMAT', `${where}: ${tar.length} bytes hold no tar header`, { path: file });
  let h: tarHeader.TarHeader;
  try {
    h = tarHeader.decode(tar.subarray(0, tarHeader.BLOCK));
  } catch (e) {
    throw new NydusError('FORMAT', `${where}: ${(e as Error).message}`, { path: file });
  }
  if (h.name.toString('latin1').replace(/^(\.\/)+/, '') !== TOC_TAR_NAME) throw new NydusError('FORMAT', `${where}: holds ${JSON.stringify(h.name.toString('utf8').slice(0, 100))}, not ${TOC_TAR_NAME}`, { path: file });
  checkLimit('STARGZ_TOC_MAX', `${file}: ${TOC_TAR_NAME}`, h.size);
  if (tar.length < tarHeader.BLOCK + h.size) throw new NydusError('FORMAT', `${where}: ${TOC_TAR_NAME} ends after ${tar.length - tarHeader.BLOCK} of ${h.size} bytes (truncated or corrupt)`, { path: file });
  return { text: tar.subarray(tarHeader.BLOCK, tarHeader.BLOCK + h.size).toString('utf8'), tocOffset: footer.tocOffset };
}

function sha256Of(fd: number, file: string, size: number): string {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(HASH_PIECE);
  for (let off = 0; off < size; ) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, Math.min(HASH_PIECE, size - off), off);
    } catch (e) {
      throw fsError('SOURCE', file, e);
    }
    if (n === 0) throw new NydusError('SOURCE', `file shrank while reading (expected ${size} bytes)`, { path: file });
    hash.update(buf.subarray(0, n));
    off += n;
  }
  return hash.digest('hex');
}

/** Reads SOURCE: a TOC JSON file, or an eStargz blob (it starts with the gzip magic). */
function readSource(file: string): { toc: Toc; blob?: BlobSource } {
  const fd = openOrFail(file);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new NydusError('SOURCE', `${TYPE} reads a regular file (stargz.index.json or the eStargz blob)`, { path: file });
    const head = st.size >= 2 ? readAt(fd, file, 0, 2) : Buffer.alloc(0);
    if (head[0] === 0x1f && head[1] === 0x8b) {
      const { text, tocOffset } = tocOfBlob(fd, file, st.size);
      const toc = parseToc(text, file);
      return { toc, blob: { size: st.size, tocOffset, sha256: sha256Of(fd, file, st.size) } };
    }
    checkLimit('STARGZ_TOC_MAX', `${file}: TOC`, st.size);
    return { toc: parseToc(readAt(fd, file, 0, st.size).toString('utf8'), file) };
  } finally {
    fs.closeSync(fd);
  }
}

/** The chunk-info table upstream computes (v1, zstd when it shrinks) for the blob table's ci fields; no blob.meta is written. */
function ciFields(chunks: ChunkInfo[]): Pick<bt.BlobEntry, 'ci_compressor' | 'ci_offset' | 'ci_compressed_size' | 'ci_uncompressed_size'> {
  const table = Buffer.alloc(chunks.length * bci.V1_SIZE);
  chunks.forEach((c, i) =>
    bci.encodeV1({
      compressed_offset: c.compressedOffset, compressed_size: Math.min(c.compressedSize, 0x1000000),
      uncompressed_offset: c.uncompressedOffset, uncompressed_size: c.uncompressedSize, flags: 0, data: 0n,
    }, table, i * bci.V1_SIZE),
  );
  const zstd = compressorByName('zstd')!;
  const z = Buffer.from(zstd.compress(table));
  const shrinks = z.length < table.length;
  return {
    ci_compressor: shrinks ? zstd.id : compressorByName('none')!.id, ci_offset: 0,
    ci_compressed_size: shrinks ? z.length : table.length, ci_uncompressed_size: table.length,
  };
}

export async function createStargzIndex(o: CreateOptions): Promise<CreateResult> {
  checkOptions(o);
  const trace = new Trace();
  const total = trace.start('total_build');
  const source = o.source as string;
  const chunkSize = o.chunkSize ?? STARGZ_CHUNK_SIZE;
  const compressor = compressorByName('gzip')!;
  const digester = digesterByName('sha256')!;

  const treeTimer = trace.start('build_tree');
  const { toc, blob } = readSource(source);
  let blobId = o.blobId;
  let dataEnd = o.blobDataSize;
  if (blob) {
    if (blobId !== undefined && blobId !== blob.sha256) {
      throw new NydusError('USAGE', `--blob-id ${blobId} is not this eStargz blob's id (its sha256 is ${blob.sha256}): the image would point at another layer`, { path: source });
    }
    blobId = blob.sha256;
    if (dataEnd !== undefined && dataEnd > blob.size) throw new NydusError('USAGE', `--blob-data-size 0x${dataEnd.toString(16)} is larger than the eStargz blob (${blob.size} bytes)`, { path: source });
    // Chunk data ends where the TOC's member starts.
    dataEnd = Math.min(dataEnd ?? blob.tocOffset, blob.tocOffset);
  } else if (blobId === undefined || blobId.trim() === '') {
    throw new NydusError('USAGE', `'--blob-id' is missing for '--type stargz_index'`);
  }

  // A parent's blobs come first in the table; this layer's blob follows them.
  let parentTree: TreeNode | undefined;
  const chunks: ChunkInfo[] = [];
  const parentBlobs: bt.BlobEntry[] = [];
  if (o.parentBootstrap) {
    const t = trace.start('load_parent_bootstrap');
    const parent = await openCompatible(o.parentBootstrap, 'parent bootstrap', chunkSize, !o.repeatable, 6, digester.name);
    parentTree = (await import('../tree/from-image.js')).treeFromImage(parent, chunks, 0).root;
    parent.blobs.forEach((b, i) => parentBlobs.push(blobEntryFromInfo(b, i, o.parentBootstrap!)));
    t.end();
  }
  const layer = stargzTree(toc, { chunkSize, explicitUidGid: !o.repeatable, blobIndex: parentBlobs.length, dataEnd, where: source });
  const base = chunks.length;
  for (const c of layer.chunks) chunks.push(c);
  if (base > 0) {
    // The layer's chunk refs index its own list; they now sit after the parent's.
    for (const n of walk(layer.root)) for (const r of n.chunks ?? []) r.chunk += base;
  }
  const root = parentTree ? applyLayer(parentTree, layer.root, o.whiteoutSpec ?? 'oci') : layer.root;
  treeTimer.end();

  const blobs = [...parentBlobs];
  if (layer.chunks.length > 0) {
    blobs.push(newBlobEntry({
      blob_id: blobId!, blob_index: parentBlobs.length, chunk_size: chunkSize, chunk_count: layer.chunks.length,
      compression_algo: compressor.id, digest_algo: digester.id,
      // dump_meta_data marks the chunk info aligned; the context's default is CAP_TAR_TOC.
      features: bt.FEATURE_ALIGNED | bt.FEATURE_CAP_TAR_TOC,
      compressed_size: layer.compressedSize, uncompressed_size: layer.uncompressedSize,
      ...ciFields(layer.chunks),
    }));
  }

  const planTimer = trace.start('build_bootstrap');
  const plan = planBootstrap(root, 4096);
  planTimer.end();
  const prefetch = prefetchNodes(root, o.prefetch ?? []).map((n) => plan.byNode.get(n)!.nid);
  const flags = compressor.superFlag | digester.superFlag | ext.FLAG_ENCRYPTION_NONE;
  const bootstrap = emitBootstrap({ plan, chunks, chunkSize, blockSize: 4096, explicitUidGid: !o.repeatable, prefetch, flags, blobs });

  const dumpTimer = trace.start('dump_bootstrap');
  const bootstrapPath = await writeBootstrap(bootstrap, { bootstrap: o.bootstrap, blobDir: o.blobDir });
  dumpTimer.end();
  total.end();
  trace.eventIds();
  // No data blob is written: the eStargz layer is the blob.
  return {
    bootstrap: bootstrapPath, blobs: blobs.map((b) => b.blob_id), blobSize: 0,
    compressor: compressor.name,
    fsVersion: '6',
    trace,
  };
}
