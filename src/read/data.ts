// Reads file data back out of data blobs: a chunk's stored bytes, decompressed and verified.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressorByName, digesterByName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { badBlobId } from '../format/limits.js';
import { FEATURE_BATCH, FEATURE_ENCRYPTED, FEATURE_TARFS } from '../format/rafs/blob-table.js';
import { blobCipherFrom, decrypt, type BlobCipher } from '../algo/cipher.js';
import { CHUNK_BATCH, CHUNK_COMPRESSED, CHUNK_ENCRYPTED, type BlobInfo, type ChunkInfo, type ImageNode, type RafsImage } from './model.js';
import { loadBlobMeta, type BlobMeta } from './blob-meta.js';
import * as bci from '../format/blob/chunk-info.js';

export interface BlobLocation {
  /** Directory holding blobs named by their id. */
  blobDir?: string;
  /** One blob file, for an image with exactly one blob. */
  blob?: string;
  /** Explicit id -> file. */
  files?: Map<string, string>;
}

export class BlobReader {
  private readonly fds = new Map<number, { fd: number; size: number; file: string }>();
  /** Per blob: its cipher (null: none) and, for batch blobs, its blob.meta. */
  private readonly ciphers = new Map<number, BlobCipher | null>();
  private readonly metas = new Map<number, BlobMeta>();
  /** The batch last decoded: blob index, batch index, raw bytes (a file's chunks sit in one batch). */
  private lastBatch?: { blob: number; batch: number; data: Buffer };

  constructor(private readonly image: RafsImage, private readonly where: BlobLocation) {}

  private fileFor(blobIndex: number): string {
    const b = this.image.blobs[blobIndex];
    const explicit = this.where.files?.get(b.blobId);
    if (explicit) return explicit;
    if (this.where.blob) {
      if (this.image.blobs.length !== 1) throw new NydusError('USAGE', `--blob names one file but the image has ${this.image.blobs.length} blobs; use --blob-dir`);
      return this.where.blob;
    }
    if (this.where.blobDir) {
      // The loaders refuse such ids already; a blob id is data, never a path out of -D.
      const bad = badBlobId(b.blobId);
      if (bad) throw new NydusError('FORMAT', `blob ${b.index}: ${bad}`);
      return path.join(this.where.blobDir, b.blobId);
    }
    throw new NydusError('USAGE', `no blob location given for blob ${b.blobId}`);
  }

  private open(blobIndex: number): { fd: number; size: number; file: string } {
    let h = this.fds.get(blobIndex);
    if (!h) {
      const file = this.fileFor(blobIndex);
      try {
        const fd = fs.openSync(file, 'r');
        const st = fs.fstatSync(fd);
        if (st.isDirectory()) {
          fs.closeSync(fd);
          throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
        }
        h = { fd, size: st.size, file };
      } catch (e) {
        throw fsError('SOURCE', file, e);
      }
      this.fds.set(blobIndex, h);
    }
    return h;
  }

  /**
   * The uncompressed bytes of one chunk, checked against its digest when `verify` is set. With
   * `into` (at least the chunk's stored size), a chunk stored raw is read into it and the result
   * is a view of it; a compressed chunk's stored bytes land there before decompression.
   */
  readChunk(c: ChunkInfo, verify = false, into?: Uint8Array): Buffer {
    const h = this.open(c.blobIndex);
    const blob = this.image.blobs[c.blobIndex];
    const cipher = this.cipherOf(blob);
    const encrypted = (c.flags & CHUNK_ENCRYPTED) !== 0 || (blob.features & FEATURE_ENCRYPTED) !== 0;
    if (encrypted && !cipher) throw new NydusError('FORMAT', `chunk ${c.index} of blob ${blob.blobId} is encrypted but the blob table gives no cipher`);
    if ((c.flags & CHUNK_BATCH) !== 0 || (blob.features & FEATURE_BATCH) !== 0) {
      const e = this.metaOf(c.blobIndex, h, cipher).entry(c.index, c.uncompressedSize);
      if ((e.flags & bci.V2_FLAG_BATCH) !== 0) return this.check(c, blob, h.file, this.readBatched(c, e, h, cipher), verify);
    }
    if (c.compressedOffset + c.compressedSize > h.size) {
      throw new NydusError('SOURCE', `blob is shorter than referenced: chunk ${c.index} needs bytes up to ${c.compressedOffset + c.compressedSize}, file has ${h.size}`, { path: h.file });
    }
    let stored = into && into.length >= c.compressedSize ? Buffer.from(into.buffer, into.byteOffset, c.compressedSize) : Buffer.allocUnsafe(c.compressedSize);
    try {
      fs.readSync(h.fd, stored, 0, stored.length, c.compressedOffset);
    } catch (e) {
      throw fsError('SOURCE', h.file, e);
    }
    if (encrypted) stored = decrypt(cipher!, stored, `chunk ${c.index} at ${c.compressedOffset} of blob ${blob.blobId}`);
    let raw: Buffer = stored;
    if ((c.flags & CHUNK_COMPRESSED) !== 0) {
      try {
        raw = Buffer.from(compressorByName(blob.compressor)!.decompress(stored, c.uncompressedSize));
      } catch (e) {
        throw new NydusError('FORMAT', `chunk ${c.index} at ${c.compressedOffset} does not decompress with ${blob.compressor}: ${(e as Error).message}`, { path: h.file });
      }
    }
    return this.check(c, blob, h.file, raw, verify);
  }

  /** The size check and, with `verify`, the digest check of a chunk's raw bytes. */
  private check(c: ChunkInfo, blob: BlobInfo, file: string, raw: Buffer, verify: boolean): Buffer {
    if (raw.length !== c.uncompressedSize) {
      throw new NydusError('FORMAT', `chunk ${c.index} decompressed to ${raw.length} bytes, expected ${c.uncompressedSize}`, { path: file });
    }
    // Tarfs chunks carry no digest (the tar is the blob as it came: tar-merge-export.md §6), so
    // there is nothing to verify them against beyond their place and size in the tar.
    if (verify && (blob.features & FEATURE_TARFS) === 0 && !digesterByName(blob.digester)!.digest(raw).equals(c.digest)) {
      throw new NydusError('FORMAT', `chunk ${c.index} at ${c.compressedOffset}: digest mismatch`, { path: file });
    }
    return raw;
  }

  private cipherOf(blob: BlobInfo): BlobCipher | undefined {
    let c = this.ciphers.get(blob.index);
    if (c === undefined) {
      c = blobCipherFrom(blob.cipherAlgo ?? 0, blob.metaDigest, blob.cipherIv ?? Buffer.alloc(16), `blob_table[${blob.index}]`) ?? null;
      this.ciphers.set(blob.index, c);
    }
    return c ?? undefined;
  }

  private metaOf(index: number, h: { fd: number; size: number; file: string }, cipher: BlobCipher | undefined): BlobMeta {
    let m = this.metas.get(index);
    if (!m) {
      m = loadBlobMeta(this.image.blobs[index], h, cipher);
      this.metas.set(index, m);
    }
    return m;
  }

  /** A batched chunk: its batch read, decrypted and decompressed once, then its slice. */
  private readBatched(c: ChunkInfo, e: bci.BlobChunkInfo, h: { fd: number; size: number; file: string }, cipher: BlobCipher | undefined): Buffer {
    const blob = this.image.blobs[c.blobIndex];
    const meta = this.metaOf(c.blobIndex, h, cipher);
    const batch = Number(e.data >> 32n);
    const offset = Number(e.data & 0xffff_ffffn);
    const ctx = meta.batch(batch, c.index);
    if (offset + c.uncompressedSize > ctx.uncompressed_batch_size) {
      throw new NydusError('FORMAT', `chunk ${c.index} of blob ${blob.blobId}: bytes ${offset}..${offset + c.uncompressedSize} lie outside its batch ${batch} of ${ctx.uncompressed_batch_size} bytes`, { path: h.file });
    }
    if (this.lastBatch?.blob !== c.blobIndex || this.lastBatch.batch !== batch) {
      const what = `batch ${batch} at ${e.compressed_offset} of blob ${blob.blobId}`;
      if (e.compressed_offset + ctx.compressed_size > h.size) {
        throw new NydusError('SOURCE', `blob is shorter than referenced: ${what} needs bytes up to ${e.compressed_offset + ctx.compressed_size}, file has ${h.size}`, { path: h.file });
      }
      let stored: Buffer = Buffer.allocUnsafe(ctx.compressed_size);
      try {
        fs.readSync(h.fd, stored, 0, stored.length, e.compressed_offset);
      } catch (err) {
        throw fsError('SOURCE', h.file, err);
      }
      if (cipher && ((e.flags & bci.V2_FLAG_ENCRYPTED) !== 0 || (blob.features & FEATURE_ENCRYPTED) !== 0)) stored = decrypt(cipher, stored, what);
      let raw = stored;
      // Upstream's rule: a batch is compressed when its stored size differs from its raw size.
      if (blob.compressor !== 'none' && ctx.compressed_size !== ctx.uncompressed_batch_size) {
        try {
          raw = Buffer.from(compressorByName(blob.compressor)!.decompress(stored, ctx.uncompressed_batch_size));
        } catch (err) {
          throw new NydusError('FORMAT', `${what} does not decompress with ${blob.compressor}: ${(err as Error).message}`, { path: h.file });
        }
      }
      if (raw.length !== ctx.uncompressed_batch_size) throw new NydusError('FORMAT', `${what} holds ${raw.length} bytes, its context says ${ctx.uncompressed_batch_size}`, { path: h.file });
      this.lastBatch = { blob: c.blobIndex, batch, data: raw };
    }
    return Buffer.from(this.lastBatch.data.subarray(offset, offset + c.uncompressedSize));
  }

  /** A regular file's content, chunk by chunk. */
  *readFile(node: ImageNode, verify = false): Generator<Buffer> {
    for (const c of node.chunks ?? []) yield this.readChunk(c, verify);
  }

  close(): void {
    for (const h of this.fds.values()) fs.closeSync(h.fd);
    this.fds.clear();
  }
}
