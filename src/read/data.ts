// Reads file data back out of data blobs: a chunk's stored bytes, decompressed and verified.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressorByName, digesterByName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { LIMITS, badBlobId } from '../format/limits.js';
import { ShortGzipMember, gzipReadBound } from '../format/stargz/gzip.js';
import { FEATURE_BATCH, FEATURE_ENCRYPTED, FEATURE_TARFS, FEATURE_ZRAN } from '../format/rafs/blob-table.js';
import { blobCipherFrom, decrypt, type BlobCipher } from '../algo/cipher.js';
import { CHUNK_BATCH, CHUNK_COMPRESSED, CHUNK_ENCRYPTED, type BlobInfo, type ChunkInfo, type ImageNode, type RafsImage } from './model.js';
import { loadBlobMeta, type BlobMeta, type BlobSource } from './blob-meta.js';
import type { SyncBlobReader } from '../backends/sync-reader.js';
import * as bci from '../format/blob/chunk-info.js';
import { ZranChunkReader, isZranBlob, loadZranMeta } from './zran.js';

export interface BlobLocation {
  /** Directory holding blobs named by their id. */
  blobDir?: string;
  /** One blob file, for an image with exactly one blob. */
  blob?: string;
  /** Explicit id -> file. */
  files?: Map<string, string>;
  /** A storage backend holding the blobs by id, read with ranged gets. */
  backend?: SyncBlobReader;
  /** The file the image was opened from: a targz-ref ref blob carries its blob.meta (ZRAN table). */
  imageFile?: string;
}

/** A blob whose chunks are gzip members of an eStargz layer, each read by its bounded size. */
export const gzipMembers = (blob: BlobInfo) => blob.compressor === 'gzip' && (blob.features & FEATURE_ZRAN) === 0;

/** An open blob: a file (fd) or a backend object (fd -1, read with ranged gets). */
interface OpenBlob extends BlobSource {
  fd: number;
  remote?: { reader: SyncBlobReader; id: string };
}

/** Where a batched chunk's bytes are: its batch (key, start, stored and raw size) and its offset in it. */
interface BatchPlace {
  /** Identifies the batch within its blob (for the decoded-batch cache). */
  key: number;
  at: number;
  offset: number;
  stored: number;
  raw: number;
}

export class BlobReader {
  private readonly fds = new Map<number, OpenBlob>();
  private readonly zran = new Map<number, ZranChunkReader>();
  /** Per blob: its cipher (null: none) and, for batch blobs, its blob.meta. */
  private readonly ciphers = new Map<number, BlobCipher | null>();
  private readonly metas = new Map<number, BlobMeta>();
  private readonly derived = new Map<number, Map<number, Map<number, { offset: number; total: number }>>>();
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

  private open(blobIndex: number): OpenBlob {
    let h = this.fds.get(blobIndex);
    if (!h && this.where.backend && !this.where.files?.has(this.image.blobs[blobIndex].blobId)) {
      const id = this.image.blobs[blobIndex].blobId;
      const bad = badBlobId(id);
      if (bad) throw new NydusError('FORMAT', `blob ${blobIndex}: ${bad}`);
      const reader = this.where.backend;
      const size = reader.size(id);
      if (size === undefined) throw reader.missing(id);
      h = { fd: -1, size, file: `blob ${id}`, remote: { reader, id }, readAt: (into, at) => reader.read(id, into, at, size) };
      this.fds.set(blobIndex, h);
    }
    if (!h) {
      const file = this.fileFor(blobIndex);
      try {
        const fd = fs.openSync(file, 'r');
        const st = fs.fstatSync(fd);
        if (st.isDirectory()) {
          fs.closeSync(fd);
          throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
        }
        h = { fd, size: st.size, file, readAt: (into, at) => void fs.readSync(fd, into, 0, into.length, at) };
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
    if (isZranBlob(blob)) return this.check(c, blob, h.file, this.zranReader(c.blobIndex).chunk(c), verify);
    const cipher = this.cipherOf(blob);
    const encrypted = (c.flags & CHUNK_ENCRYPTED) !== 0 || (blob.features & FEATURE_ENCRYPTED) !== 0;
    if (encrypted && !cipher) throw new NydusError('FORMAT', `chunk ${c.index} of blob ${blob.blobId} is encrypted but the blob table gives no cipher`);
    if ((c.flags & CHUNK_BATCH) !== 0 || (blob.features & FEATURE_BATCH) !== 0) {
      const place = this.batchPlace(c, blob, h, cipher);
      if (place) return this.check(c, blob, h.file, this.readBatched(c, place, h, cipher, encrypted), verify);
    }
    let storedSize = c.compressedSize;
    if (c.compressedOffset + storedSize > h.size) {
      // A gzip member's size is an upper bound (stargz: blob.md §4): it may end before that, not start past the file.
      if (gzipMembers(blob) && c.compressedOffset < h.size) storedSize = h.size - c.compressedOffset;
      else throw new NydusError('SOURCE', `blob is shorter than referenced: chunk ${c.index} needs bytes up to ${c.compressedOffset + c.compressedSize}, file has ${h.size}`, { path: h.file });
    }
    let stored = into && into.length >= storedSize ? Buffer.from(into.buffer, into.byteOffset, storedSize) : Buffer.allocUnsafe(storedSize);
    this.readInto(h, stored, c.compressedOffset);
    if (encrypted) stored = decrypt(cipher!, stored, `chunk ${c.index} at ${c.compressedOffset} of blob ${blob.blobId}`);
    let raw: Buffer = stored;
    if ((c.flags & CHUNK_COMPRESSED) !== 0) {
      try {
        try {
          raw = Buffer.from(compressorByName(blob.compressor)!.decompress(stored, c.uncompressedSize));
        } catch (e) {
          // The recorded size of a gzip member is upstream's estimate; when the data needs more of the member, read on.
          const wider = Math.min(h.size - c.compressedOffset, gzipReadBound(c.uncompressedSize));
          if (!(e instanceof ShortGzipMember) || !gzipMembers(blob) || wider <= storedSize) throw e;
          const more = Buffer.allocUnsafe(wider);
          this.readInto(h, more, c.compressedOffset);
          raw = Buffer.from(compressorByName(blob.compressor)!.decompress(more, c.uncompressedSize));
        }
      } catch (e) {
        throw new NydusError('FORMAT', `chunk ${c.index} at ${c.compressedOffset} does not decompress with ${blob.compressor}: ${(e as Error).message}`, { path: h.file });
      }
    }
    return this.check(c, blob, h.file, raw, verify);
  }

  /** Bytes inflated from targz-ref blobs so far: what their random access cost. */
  get inflatedBytes(): number {
    let n = 0;
    for (const z of this.zran.values()) n += z.inflated;
    return n;
  }

  private zranReader(blobIndex: number): ZranChunkReader {
    let z = this.zran.get(blobIndex);
    if (!z) {
      const h = this.open(blobIndex);
      const meta = loadZranMeta(this.image.blobs[blobIndex], this.where.imageFile, this.where.blobDir);
      z = new ZranChunkReader(meta, (offset, length) => {
        if (offset + length > h.size) throw new NydusError('SOURCE', `blob is shorter than referenced: a ZRAN context needs bytes up to ${offset + length}, file has ${h.size}`, { path: h.file });
        const buf = Buffer.allocUnsafe(length);
        this.readInto(h, buf, offset);
        return buf;
      });
      this.zran.set(blobIndex, z);
    }
    return z;
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

  private readInto(h: OpenBlob, into: Buffer, at: number): void {
    try {
      h.readAt(into, at);
    } catch (e) {
      throw e instanceof NydusError ? e : fsError('SOURCE', h.file, e);
    }
  }

  private cipherOf(blob: BlobInfo): BlobCipher | undefined {
    let c = this.ciphers.get(blob.index);
    if (c === undefined) {
      c = blobCipherFrom(blob.cipherAlgo ?? 0, blob.metaDigest, blob.cipherIv ?? Buffer.alloc(16), `blob_table[${blob.index}]`) ?? null;
      this.ciphers.set(blob.index, c);
    }
    return c ?? undefined;
  }

  private metaOf(index: number, h: OpenBlob, cipher: BlobCipher | undefined): BlobMeta {
    let m = this.metas.get(index);
    if (!m) {
      m = loadBlobMeta(this.image.blobs[index], h, cipher);
      this.metas.set(index, m);
    }
    return m;
  }

  /**
   * Where a chunk of a batch blob sits, or undefined when it is not batched. blob.meta says so
   * when the blob file holds it (every upstream image); the converter's unpack hands over only
   * the chunk data (image.blob), and then the bootstrap's own chunk table serves for our images:
   * a batched chunk is flagged BATCH there, with its batch's start and stored size, and its
   * batch's members are the chunks flagged so at that start, in chunk-index order.
   */
  private batchPlace(c: ChunkInfo, blob: BlobInfo, h: OpenBlob, cipher: BlobCipher | undefined): BatchPlace | undefined {
    if (blob.ciOffset + blob.ciCompressedSize + 4096 <= h.size && blob.ciUncompressedSize > 0) {
      const meta = this.metaOf(c.blobIndex, h, cipher);
      const e = meta.entry(c.index, c.uncompressedSize);
      if ((e.flags & bci.V2_FLAG_BATCH) === 0) return undefined;
      const batch = Number(e.data >> 32n);
      const ctx = meta.batch(batch, c.index);
      return { key: batch, at: e.compressed_offset, offset: Number(e.data & 0xffff_ffffn), stored: ctx.compressed_size, raw: ctx.uncompressed_batch_size };
    }
    if ((c.flags & CHUNK_BATCH) === 0) {
      if (c.compressedSize > 0) return undefined;
      throw new NydusError('SOURCE', `chunk ${c.index} of batch blob ${blob.blobId} is found only through blob.meta, which ${h.file} (${h.size} bytes) does not hold: give the whole blob`);
    }
    const members = this.derivedBatches(c.blobIndex).get(c.compressedOffset);
    const m = members?.get(c.index);
    if (!members || !m) throw new NydusError('FORMAT', `chunk ${c.index} of blob ${blob.blobId} is flagged BATCH but is not in the chunk table`);
    return { key: -1 - c.compressedOffset, at: c.compressedOffset, offset: m.offset, stored: c.compressedSize, raw: m.total };
  }

  /** Per batch start: each member's offset in the batch and the batch's raw size, from the bootstrap's chunk table. */
  private derivedBatches(blobIndex: number): Map<number, Map<number, { offset: number; total: number }>> {
    let d = this.derived.get(blobIndex);
    if (d) return d;
    const blob = this.image.blobs[blobIndex];
    const starts = new Map<number, ChunkInfo[]>();
    for (const c of this.image.chunkTable) {
      if (c.blobIndex !== blobIndex || (c.flags & CHUNK_BATCH) === 0) continue;
      const list = starts.get(c.compressedOffset) ?? [];
      list.push(c);
      starts.set(c.compressedOffset, list);
    }
    d = new Map();
    for (const [at, list] of starts) {
      list.sort((x, y) => x.index - y.index);
      const offsets = new Map<number, { offset: number; total: number }>();
      let total = 0;
      for (const c of list) {
        if (c.compressedSize !== list[0].compressedSize) throw new NydusError('FORMAT', `batch at ${at} of blob ${blob.blobId}: its chunks disagree on its stored size (${list[0].compressedSize}, ${c.compressedSize})`);
        if (offsets.has(c.index)) continue;
        offsets.set(c.index, { offset: total, total: 0 });
        total += c.uncompressedSize;
        if (total > LIMITS.CHUNK_SIZE_MAX.value) throw new NydusError('FORMAT', `batch at ${at} of blob ${blob.blobId} holds more than ${LIMITS.CHUNK_SIZE_MAX.value} bytes`);
      }
      for (const v of offsets.values()) v.total = total;
      d.set(at, offsets);
    }
    this.derived.set(blobIndex, d);
    return d;
  }

  /** A batched chunk: its batch read, decrypted and decompressed once, then its slice. */
  private readBatched(c: ChunkInfo, p: BatchPlace, h: OpenBlob, cipher: BlobCipher | undefined, encrypted: boolean): Buffer {
    const blob = this.image.blobs[c.blobIndex];
    if (p.raw === 0 || p.raw > LIMITS.CHUNK_SIZE_MAX.value || p.stored === 0) {
      throw new NydusError('FORMAT', `chunk ${c.index} of blob ${blob.blobId}: its batch claims ${p.stored} stored and ${p.raw} raw bytes`, { path: h.file });
    }
    if (p.offset + c.uncompressedSize > p.raw) {
      throw new NydusError('FORMAT', `chunk ${c.index} of blob ${blob.blobId}: bytes ${p.offset}..${p.offset + c.uncompressedSize} lie outside its batch of ${p.raw} bytes`, { path: h.file });
    }
    if (this.lastBatch?.blob !== c.blobIndex || this.lastBatch.batch !== p.key) {
      const what = `batch at ${p.at} of blob ${blob.blobId}`;
      if (p.at + p.stored > h.size) {
        throw new NydusError('SOURCE', `blob is shorter than referenced: ${what} needs bytes up to ${p.at + p.stored}, file has ${h.size}`, { path: h.file });
      }
      let stored: Buffer = Buffer.allocUnsafe(p.stored);
      this.readInto(h, stored, p.at);
      if (encrypted) stored = decrypt(cipher!, stored, what);
      let raw = stored;
      // Upstream's rule: a batch is compressed when its stored size differs from its raw size.
      if (blob.compressor !== 'none' && p.stored !== p.raw) {
        try {
          raw = Buffer.from(compressorByName(blob.compressor)!.decompress(stored, p.raw));
        } catch (err) {
          throw new NydusError('FORMAT', `${what} does not decompress with ${blob.compressor}: ${(err as Error).message}`, { path: h.file });
        }
      }
      if (raw.length !== p.raw) throw new NydusError('FORMAT', `${what} holds ${raw.length} bytes, its context says ${p.raw}`, { path: h.file });
      this.lastBatch = { blob: c.blobIndex, batch: p.key, data: raw };
    }
    return Buffer.from(this.lastBatch.data.subarray(p.offset, p.offset + c.uncompressedSize));
  }

  /** A regular file's content, chunk by chunk. */
  *readFile(node: ImageNode, verify = false): Generator<Buffer> {
    for (const c of node.chunks ?? []) yield this.readChunk(c, verify);
  }

  close(): void {
    for (const h of this.fds.values()) if (!h.remote) fs.closeSync(h.fd);
    this.fds.clear();
  }
}
