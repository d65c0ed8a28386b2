// Reads file data back out of data blobs: a chunk's stored bytes, decompressed and verified.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressorByName, digesterByName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { badBlobId } from '../format/limits.js';
import { FEATURE_TARFS } from '../format/rafs/blob-table.js';
import { CHUNK_COMPRESSED, type ChunkInfo, type ImageNode, type RafsImage } from './model.js';
import { ZranChunkReader, isZranBlob, loadZranMeta } from './zran.js';

export interface BlobLocation {
  /** Directory holding blobs named by their id. */
  blobDir?: string;
  /** One blob file, for an image with exactly one blob. */
  blob?: string;
  /** Explicit id -> file. */
  files?: Map<string, string>;
  /** The file the image was opened from: a targz-ref ref blob carries its blob.meta (ZRAN table). */
  imageFile?: string;
}

export class BlobReader {
  private readonly fds = new Map<number, { fd: number; size: number; file: string }>();
  private readonly zran = new Map<number, ZranChunkReader>();

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
    if (isZranBlob(blob)) return this.checked(c, this.zranReader(c.blobIndex).chunk(c), verify, h.file);
    if (c.compressedOffset + c.compressedSize > h.size) {
      throw new NydusError('SOURCE', `blob is shorter than referenced: chunk ${c.index} needs bytes up to ${c.compressedOffset + c.compressedSize}, file has ${h.size}`, { path: h.file });
    }
    const stored = into && into.length >= c.compressedSize ? Buffer.from(into.buffer, into.byteOffset, c.compressedSize) : Buffer.allocUnsafe(c.compressedSize);
    try {
      fs.readSync(h.fd, stored, 0, stored.length, c.compressedOffset);
    } catch (e) {
      throw fsError('SOURCE', h.file, e);
    }
    let raw: Buffer = stored;
    if ((c.flags & CHUNK_COMPRESSED) !== 0) {
      try {
        raw = Buffer.from(compressorByName(blob.compressor)!.decompress(stored, c.uncompressedSize));
      } catch (e) {
        throw new NydusError('FORMAT', `chunk ${c.index} at ${c.compressedOffset} does not decompress with ${blob.compressor}: ${(e as Error).message}`, { path: h.file });
      }
    }
    return this.checked(c, raw, verify, h.file);
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
        let done = 0;
        try {
          while (done < length) {
            const n = fs.readSync(h.fd, buf, done, length - done, offset + done);
            if (n === 0) break;
            done += n;
          }
        } catch (e) {
          throw fsError('SOURCE', h.file, e);
        }
        return buf.subarray(0, done);
      });
      this.zran.set(blobIndex, z);
    }
    return z;
  }

  /** A chunk's bytes checked for size, and for digest when asked. */
  private checked(c: ChunkInfo, raw: Buffer, verify: boolean, file: string): Buffer {
    const blob = this.image.blobs[c.blobIndex];
    const h = { file };
    if (raw.length !== c.uncompressedSize) {
      throw new NydusError('FORMAT', `chunk ${c.index} decompressed to ${raw.length} bytes, expected ${c.uncompressedSize}`, { path: h.file });
    }
    // Tarfs chunks carry no digest (the tar is the blob as it came: tar-merge-export.md §6), so
    // there is nothing to verify them against beyond their place and size in the tar.
    if (verify && (blob.features & FEATURE_TARFS) === 0 && !digesterByName(blob.digester)!.digest(raw).equals(c.digest)) {
      throw new NydusError('FORMAT', `chunk ${c.index} at ${c.compressedOffset}: digest mismatch`, { path: h.file });
    }
    return raw;
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
