// The native data blob after its chunks: blob.meta, blob.digest, the inline bootstrap and the
// TOC, each behind its tar header, in upstream's "reverse tar" order (blob.md §2). Everything is
// appended, so the blob goes out strictly sequentially (a FIFO works). The blob id is the
// sha256 of every byte written except the blob.digest array (blob.md §5.3).
import { createHash, type Hash } from 'node:crypto';
import { compressorByName, type Compressor } from '../algo/index.js';
import * as metaHeader from '../format/blob/meta-header.js';
import * as bci from '../format/blob/chunk-info.js';
import * as toc from '../format/blob/toc.js';
import * as tarHeader from '../format/blob/tar-header.js';
import * as bt from '../format/rafs/blob-table.js';
import { CHUNK_BATCH, CHUNK_COMPRESSED, CHUNK_ENCRYPTED, type ChunkInfo } from '../read/model.js';
import type { BlobState } from '../pipeline/stage.js';
import { encrypt, type BlobCipher } from '../algo/cipher.js';
import type { ChunkPacker } from './pack.js';
import * as batchCtx from '../format/blob/batch.js';
import type { BlobThread } from '../io/blob-thread.js';

export interface BlobLayout {
  inlineMeta: boolean;
  blobToc: boolean;
  /** Chunk-info table compressor (none in blob-cache mode). */
  compressor: Compressor;
  /** Write blob.meta (the chunk-info table and its header): RAFS v6 only; a v5 blob is its chunks. */
  blobMeta?: boolean;
  /** `--batch-size` > 0: batch chunks, chunk-info v2 with batch contexts. */
  batch?: boolean;
  /** `--encrypt`: the blob's key and IV; chunk-info v2, and blob.meta encrypted. */
  cipher?: BlobCipher;
}

/** Where the blob's bytes go; `position` counts them. */
export interface ByteSink {
  write(data: Uint8Array, onWritten?: () => void): void;
  drain(limit: number): Promise<void>;
}

/**
 * A writer thread for the blob: it hashes every byte and, when `writes` is true, also writes them
 * (the ByteSink is then not used for the blob's bytes); otherwise the sink gets each write first.
 */
export interface BlobOffload {
  thread: BlobThread;
  writes: boolean;
}

export const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** Keeps the compressed form only when it is strictly smaller. */
function maybeCompress(c: Compressor, data: Buffer): { stored: Buffer; algo: Compressor } {
  if (c.name === 'none' || data.length === 0) return { stored: data, algo: compressorByName('none')! };
  const z = Buffer.from(c.compress(data));
  return z.length < data.length ? { stored: z, algo: c } : { stored: data, algo: compressorByName('none')! };
}

/** The TOC and its tar header as they end a blob, with the digest and size the blob table records (blob.md §5.2). */
export function tocSection(entries: toc.TocEntry[]): { parts: Buffer[]; digest: Buffer; size: number } {
  const data = Buffer.concat(entries.map(toc.encode));
  const header = tarHeader.encode(toc.NAME_TOC, data.length);
  return { parts: [data, header], digest: sha256(data, header), size: data.length + tarHeader.SIZE };
}

export function blobFeatures(layout: BlobLayout, chunkCount: number): number {
  // ALIGNED comes with the blob.meta header, which a v5 blob does not have.
  let f = (layout.blobMeta === false ? 0 : bt.FEATURE_ALIGNED) | bt.FEATURE_CAP_TAR_TOC;
  if (layout.inlineMeta) f |= bt.FEATURE_INLINED_FS_META;
  if (layout.inlineMeta || layout.blobToc) f |= bt.FEATURE_HAS_TAR_HEADER;
  if (layout.blobToc) f |= bt.FEATURE_HAS_TOC;
  if (layout.blobToc && chunkCount > 0) f |= bt.FEATURE_INLINED_CHUNK_DIGEST;
  if (layout.batch) f |= bt.FEATURE_BATCH | bt.FEATURE_CHUNK_INFO_V2;
  if (layout.cipher) f |= bt.FEATURE_ENCRYPTED | bt.FEATURE_CHUNK_INFO_V2;
  return f;
}

/** Writes the blob, hashing it; the chunk data goes through writeChunks, the rest through finish. */
export class BlobWriter {
  /** The hash, when no writer thread keeps it. */
  private hash?: Hash;
  position = 0;
  private readonly tocEntries: toc.TocEntry[] = [];
  /** Filled by writeMeta. */
  meta: { ciOffset: number; ciCompressedSize: number; ciUncompressedSize: number; ciCompressor: number; table: Buffer; header: Buffer } =
    { ciOffset: 0, ciCompressedSize: 0, ciUncompressedSize: 0, ciCompressor: 0, table: Buffer.alloc(0), header: Buffer.alloc(0) };
  tocSize = 0;
  tocDigest: Buffer = Buffer.alloc(32);
  /** Offset of image.boot (the inline bootstrap's compressed_size). */
  bootOffset = 0;

  constructor(private readonly out: ByteSink, private readonly layout: BlobLayout, private offload?: BlobOffload) {
    if (!offload) this.hash = createHash('sha256');
  }

  /**
   * Writes and hashes on this thread after all, without the writer thread (a small build: the
   * thread would cost more to start than it saves). Only before the first write: after it, the
   * thread keeps the blob's hash, and this does nothing.
   */
  inline(): void {
    if (!this.offload || this.position > 0) return;
    this.offload = undefined;
    this.hash = createHash('sha256');
  }

  /**
   * Appends chunk data (the sink stage calls this). With onWritten the buffer is lent until then,
   * and onWritten gets it back (with a writer thread, as a new view of the same memory).
   */
  write(data: Uint8Array, hashed = true, onWritten?: (back: Uint8Array) => void): void {
    this.position += data.byteLength;
    const off = this.offload;
    if (!off) {
      if (hashed) this.hash!.update(data);
      this.out.write(data, onWritten && (() => onWritten(data)));
      return;
    }
    // A sink that is not the thread's takes its bytes first (it copies or drops them at once).
    if (!off.writes) this.out.write(data);
    off.thread.write(data, hashed, onWritten);
  }

  async drain(limit: number): Promise<void> {
    if (this.offload) await this.offload.thread.drain(limit);
    await this.out.drain(limit);
  }

  /** The sha256 of what was hashed so far; final when nothing follows. */
  private digest(final: boolean): Promise<Buffer> | Buffer {
    if (this.offload) return this.offload.thread.digest(final);
    return final ? this.hash!.digest() : this.hash!.copy().digest();
  }

  private section(name: string, size: number): void {
    this.write(tarHeader.encode(name, size));
  }

  /**
   * image.blob header, blob.meta and blob.digest, after the last chunk. With a packer (batch or
   * encryption) the table is chunk-info v2 followed by the batch contexts, and its stored form
   * and the header are encrypted when the layout has a cipher; meta.table and meta.header stay
   * plain (the blob cache's .blob.meta holds them so).
   */
  async writeMeta(state: BlobState, chunks: ChunkInfo[], packer?: ChunkPacker): Promise<void> {
    const { inlineMeta, blobToc } = this.layout;
    const n = state.chunkCount;
    const tarred = inlineMeta || blobToc;
    if (tarred && n > 0) {
      this.section(toc.NAME_IMAGE_BLOB, state.compressedEnd);
      this.tocEntries.push({
        flags: 0x1, name: toc.NAME_IMAGE_BLOB, uncompressed_digest: await this.digest(false),
        compressed_offset: 0, compressed_size: state.compressedEnd, uncompressed_size: state.uncompressedEnd,
      });
    }
    if (n === 0 || this.layout.blobMeta === false) return;
    const v2 = !!(this.layout.batch || this.layout.cipher);
    // v1 entries the sink wrote as the chunks landed, when the build asked for them (all of them).
    const staged = !v2 && state.metaEntries?.count === n ? state.metaEntries.bytes.subarray(0, n * bci.V1_SIZE) : undefined;
    const entries = staged ?? Buffer.alloc(n * (v2 ? bci.V2_SIZE : bci.V1_SIZE));
    const refs = state.chunkRefs;
    if (!v2 && !staged) {
      // An entry per chunk, after the last chunk: written from the records' fields, no object each.
      const view = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
      for (let i = 0; i < refs.length; i++) {
        const c = chunks[refs[i]];
        bci.encodeV1Into(entries, view, i * bci.V1_SIZE, c.compressedOffset, c.compressedSize, c.uncompressedOffset, c.uncompressedSize);
      }
    } else if (v2) {
      refs.forEach((ref, i) => {
        const c = chunks[ref];
        const info: bci.BlobChunkInfo = {
          compressed_offset: c.compressedOffset, compressed_size: c.compressedSize,
          uncompressed_offset: c.uncompressedOffset, uncompressed_size: c.uncompressedSize, flags: 0, data: 0n,
        };
        if ((c.flags & CHUNK_BATCH) !== 0) info.compressed_size = 0;
        info.flags = ((c.flags & CHUNK_COMPRESSED) !== 0 ? bci.V2_FLAG_COMPRESSED : 0) | ((c.flags & CHUNK_ENCRYPTED) !== 0 ? bci.V2_FLAG_ENCRYPTED : 0) | ((c.flags & CHUNK_BATCH) !== 0 ? bci.V2_FLAG_BATCH : 0);
        info.data = packer?.batchData.get(ref) ?? 0n;
        bci.encodeV2(info, entries, i * bci.V2_SIZE);
      });
    }
    const contexts = this.layout.batch && packer ? packer.encodeContexts() : Buffer.alloc(0);
    const table = contexts.length > 0 ? Buffer.concat([entries, contexts]) : entries;
    const { stored: packed, algo } = maybeCompress(this.layout.compressor, table);
    const cipher = this.layout.cipher;
    const stored = cipher ? encrypt(cipher, packed) : packed;
    const ciOffset = this.position;
    const header = metaHeader.encode({
      s_features: blobFeatures(this.layout, n), s_ci_compressor: algo.id, s_ci_entries: n,
      s_ci_offset: ciOffset, s_ci_compressed_size: stored.length, s_ci_uncompressed_size: table.length,
      s_ci_zran_offset: this.layout.batch ? entries.length : 0, s_ci_zran_size: contexts.length, s_ci_zran_count: contexts.length / batchCtx.SIZE,
    });
    this.write(stored);
    this.write(cipher ? encrypt(cipher, header) : header);
    if (tarred) this.section(toc.NAME_BLOB_META, stored.length + metaHeader.SIZE);
    this.meta = { ciOffset, ciCompressedSize: stored.length, ciUncompressedSize: table.length, ciCompressor: algo.id, table, header };
    this.tocEntries.push(
      { flags: algo.tocFlag, name: toc.NAME_BLOB_META, uncompressed_digest: sha256(table), compressed_offset: ciOffset, compressed_size: stored.length, uncompressed_size: table.length },
      { flags: 0x1, name: toc.NAME_BLOB_META_HEADER, uncompressed_digest: sha256(header), compressed_offset: ciOffset + stored.length, compressed_size: metaHeader.SIZE, uncompressed_size: metaHeader.SIZE },
    );
    if (blobToc) {
      const digests = Buffer.concat(state.chunkRefs.map((r) => chunks[r].digest));
      const at = this.position;
      this.write(digests, false);
      this.section(toc.NAME_BLOB_DIGEST, digests.length);
      this.tocEntries.push({ flags: 0x1, name: toc.NAME_BLOB_DIGEST, uncompressed_digest: sha256(digests), compressed_offset: at, compressed_size: digests.length, uncompressed_size: digests.length });
    }
  }

  /** The inline bootstrap (zstd when blob-toc and it shrinks), then the TOC. Returns the blob id. */
  async finish(bootstrap?: Buffer): Promise<string> {
    if (bootstrap) {
      this.bootOffset = this.position;
      const { stored, algo } = this.layout.blobToc ? maybeCompress(compressorByName('zstd')!, bootstrap) : { stored: bootstrap, algo: compressorByName('none')! };
      this.write(stored);
      this.section(toc.NAME_IMAGE_BOOT, stored.length);
      this.tocEntries.push({ flags: algo.tocFlag, name: toc.NAME_IMAGE_BOOT, uncompressed_digest: sha256(bootstrap), compressed_offset: this.bootOffset, compressed_size: stored.length, uncompressed_size: bootstrap.length });
    }
    if (this.layout.blobToc) {
      const t = tocSection(this.tocEntries);
      for (const part of t.parts) this.write(part);
      this.tocDigest = t.digest;
      this.tocSize = t.size;
    }
    return (await this.digest(true)).toString('hex');
  }
}
