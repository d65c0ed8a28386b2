// Random access into a targz-ref image's .tar.gz (blob.md §4.3): a chunk is read by inflating
// from the start of its ZRAN context, the nearest access point before it, never from the start
// of the stream. The contexts live in the blob.meta of the ref blob (the file the image came
// from, or a ref blob or `<id>.blob.meta` in the blob dir), not in the .tar.gz.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressorByName, compressorByTocFlag } from '../algo/index.js';
import { NydusError, formatError } from '../errors.js';
import * as bci from '../format/blob/chunk-info.js';
import * as metaHeader from '../format/blob/meta-header.js';
import * as toc from '../format/blob/toc.js';
import { FEATURE_CHUNK_INFO_V2, FEATURE_ZRAN } from '../format/rafs/blob-table.js';
import { checkLimit } from '../format/limits.js';
import { decodeContexts, inflateFrom, type ZranContext } from '../sources/zran.js';
import { readToc } from './open.js';
import type { BlobInfo, ChunkInfo } from './model.js';

/** A blob's ZRAN table: for chunk i, its context and offset in that context's output. */
export interface ZranMeta {
  contexts: ZranContext[];
  chunkCtx: Uint32Array;
  chunkOff: Uint32Array;
}

export const isZranBlob = (b: BlobInfo) => (b.features & FEATURE_ZRAN) !== 0;

function readAt(fd: number, length: number, position: number, file: string, what: string): Buffer {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0) throw new NydusError('FORMAT', `${what}: file ended after ${done} of ${length} bytes`, { path: file });
    done += n;
  }
  return out;
}

/** A blob.meta header where `at` says, or undefined when the bytes there are not one. */
function headerAt(fd: number, at: number, size: number, file: string): metaHeader.MetaHeader | undefined {
  if (at < 0 || at + metaHeader.SIZE > size) return undefined;
  const raw = readAt(fd, metaHeader.SIZE, at, file, 'blob.meta header');
  if (raw.readUInt32LE(0) !== metaHeader.MAGIC || raw.readUInt32LE(metaHeader.SIZE - 4) !== metaHeader.MAGIC) return undefined;
  return metaHeader.decode(raw);
}

/**
 * The uncompressed blob.meta table and its header: from a ref blob by its TOC; from a ref blob
 * built without blob-toc where the blob entry places it (the stored table at ci_offset, its
 * header right after, as upstream reads it); or from a `.blob.meta` file (table, padding, header).
 */
function readMeta(file: string, b: BlobInfo): { table: Buffer; header: metaHeader.MetaHeader } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const entries = readToc(fd, size);
    let header: metaHeader.MetaHeader;
    let stored: Buffer;
    let algo = compressorByName('none')!;
    if (entries) {
      const m = entries.find((e) => e.name === toc.NAME_BLOB_META);
      const h = entries.find((e) => e.name === toc.NAME_BLOB_META_HEADER);
      if (!m || !h) return undefined;
      for (const e of [m, h]) {
        if (e.compressed_offset + e.compressed_size > size) throw formatError('toc_entry', e.name, e.compressed_offset, `its ${e.compressed_size} bytes lie past the end of the blob (${size} bytes)`);
      }
      header = metaHeader.decode(readAt(fd, metaHeader.SIZE, h.compressed_offset, file, toc.NAME_BLOB_META_HEADER));
      checkLimit('BOOTSTRAP_MAX', 'blob.meta compressed size', m.compressed_size);
      stored = readAt(fd, m.compressed_size, m.compressed_offset, file, toc.NAME_BLOB_META);
      algo = compressorByTocFlag(m.flags) ?? algo;
    } else {
      const placed = b.ciCompressedSize > 0 ? headerAt(fd, b.ciOffset + b.ciCompressedSize, size, file) : undefined;
      if (placed && placed.s_ci_offset === b.ciOffset && placed.s_ci_compressed_size === b.ciCompressedSize) {
        header = placed;
        checkLimit('BOOTSTRAP_MAX', 'blob.meta compressed size', b.ciCompressedSize);
        stored = readAt(fd, b.ciCompressedSize, b.ciOffset, file, toc.NAME_BLOB_META);
        algo = compressorByName(b.ciCompressor)!;
      } else {
        // Not a ref blob nor a `.blob.meta` file (a bootstrap, say): nothing here.
        const last = headerAt(fd, size - metaHeader.SIZE, size, file);
        if (!last) return undefined;
        header = last;
        if (header.s_ci_uncompressed_size > size - metaHeader.SIZE) throw formatError('blob_meta_header', 's_ci_uncompressed_size', header.s_ci_uncompressed_size, `larger than the file (${size} bytes)`);
        stored = readAt(fd, header.s_ci_uncompressed_size, 0, file, 'blob.meta');
      }
    }
    checkLimit('BOOTSTRAP_MAX', 'blob.meta uncompressed size', header.s_ci_uncompressed_size);
    let table: Buffer;
    try {
      table = algo.name === 'none' ? stored : Buffer.from(algo.decompress(stored, header.s_ci_uncompressed_size));
    } catch (e) {
      throw new NydusError('FORMAT', `blob.meta does not decompress with ${algo.name}: ${(e as Error).message.split('\n')[0]}`, { path: file });
    }
    if (table.length !== header.s_ci_uncompressed_size) throw formatError('blob_meta_header', 's_ci_uncompressed_size', header.s_ci_uncompressed_size, `the table holds ${table.length} bytes`);
    return { table, header };
  } catch (e) {
    if (e instanceof NydusError && e.path === undefined) throw new NydusError(e.code, e.message, { path: file, cause: e });
    throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/** Parses a zran blob.meta table (chunk-info v2 entries, then contexts and windows), checking it against the blob. */
export function parseZranMeta(table: Buffer, header: metaHeader.MetaHeader, chunkCount: number, file: string): ZranMeta {
  const bad = (field: string, value: unknown, why: string) => new NydusError('FORMAT', `blob_meta_header.${field} = ${value}: ${why}`, { path: file });
  if ((header.s_features & FEATURE_ZRAN) === 0 || (header.s_features & FEATURE_CHUNK_INFO_V2) === 0) throw bad('s_features', `0x${header.s_features.toString(16)}`, 'not a ZRAN table with chunk-info v2');
  if (header.s_ci_entries !== chunkCount) throw bad('s_ci_entries', header.s_ci_entries, `the blob has ${chunkCount} chunks`);
  if (header.s_ci_zran_offset !== chunkCount * bci.V2_SIZE) throw bad('s_ci_zran_offset', header.s_ci_zran_offset, `expected ${chunkCount * bci.V2_SIZE}`);
  if (header.s_ci_zran_offset + header.s_ci_zran_size > table.length) throw bad('s_ci_zran_size', header.s_ci_zran_size, `past the ${table.length}-byte table`);
  const contexts = decodeContexts(table.subarray(header.s_ci_zran_offset, header.s_ci_zran_offset + header.s_ci_zran_size), header.s_ci_zran_count, `${file}: blob.meta`);
  const chunkCtx = new Uint32Array(chunkCount);
  const chunkOff = new Uint32Array(chunkCount);
  for (let i = 0; i < chunkCount; i++) {
    const e = bci.decodeV2(table, i * bci.V2_SIZE);
    if ((e.flags & bci.V2_FLAG_ZRAN) === 0) throw new NydusError('FORMAT', `blob.meta chunk ${i} is not a ZRAN chunk (flags 0x${e.flags.toString(16)})`, { path: file });
    const ctx = Number(e.data >> 32n);
    const off = Number(e.data & 0xffff_ffffn);
    if (ctx >= contexts.length) throw new NydusError('FORMAT', `blob.meta chunk ${i} names ZRAN context ${ctx} of ${contexts.length}`, { path: file });
    if (off + e.uncompressed_size > contexts[ctx].outLen) {
      throw new NydusError('FORMAT', `blob.meta chunk ${i} lies at ${off}+${e.uncompressed_size} in ZRAN context ${ctx}, whose output is ${contexts[ctx].outLen} bytes`, { path: file });
    }
    chunkCtx[i] = ctx;
    chunkOff[i] = off;
  }
  return { contexts, chunkCtx, chunkOff };
}

/** Where a zran blob's table may be: the image's own file, then a blob dir's ref blob or `.blob.meta`. */
export function loadZranMeta(b: BlobInfo, imageFile: string | undefined, blobDir: string | undefined): ZranMeta {
  const candidates: string[] = [];
  if (imageFile) candidates.push(imageFile);
  if (blobDir) {
    candidates.push(path.join(blobDir, `${b.blobId}.blob.meta`));
    if (b.metaDigest.some((x) => x !== 0)) candidates.push(path.join(blobDir, b.metaDigest.toString('hex')));
  }
  for (const file of candidates) {
    const meta = readMeta(file, b);
    if (!meta || (meta.header.s_features & FEATURE_ZRAN) === 0 || meta.header.s_ci_entries !== b.chunkCount) continue;
    return parseZranMeta(meta.table, meta.header, b.chunkCount, file);
  }
  throw new NydusError('SOURCE', `blob ${b.blobId} is a targz-ref (zran) blob: its blob.meta was not found (give the ref blob as the bootstrap, or put it or ${b.blobId}.blob.meta in the blob dir)`);
}

/** Inflates chunks out of one .tar.gz, keeping the output of the last context used (chunks come in order). */
export class ZranChunkReader {
  /** Bytes inflated so far (what random access cost). */
  inflated = 0;
  private last?: { ctx: number; out: Buffer };

  constructor(private readonly meta: ZranMeta, private readonly read: (offset: number, length: number) => Buffer) {}

  chunk(c: ChunkInfo): Buffer {
    const ctxIndex = this.meta.chunkCtx[c.index];
    const off = this.meta.chunkOff[c.index];
    const ctx = this.meta.contexts[ctxIndex];
    const want = off + c.uncompressedSize;
    if (!this.last || this.last.ctx !== ctxIndex || this.last.out.length < want) {
      let out: Buffer;
      try {
        out = inflateFrom(ctx, this.read(ctx.inOffset, ctx.inLen), ctx.outLen);
      } catch (e) {
        if (e instanceof NydusError) throw e;
        throw new NydusError('FORMAT', `chunk ${c.index}: the gzip data of ZRAN context ${ctxIndex} (at ${ctx.inOffset}) does not inflate: ${(e as Error).message}`);
      }
      this.inflated += out.length;
      this.last = { ctx: ctxIndex, out };
    }
    const out = this.last.out;
    if (out.length < want) throw new NydusError('FORMAT', `chunk ${c.index}: ZRAN context ${ctxIndex} inflates to ${out.length} bytes, the chunk needs ${want}`);
    return out.subarray(off, want);
  }
}
