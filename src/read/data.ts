// Reads file data back out of data blobs: a chunk's stored bytes, decompressed and verified.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressorByName, digesterByName } from '../algo/index.js';
import { NydusError, fsError } from '../errors.js';
import { badBlobId } from '../format/limits.js';
import { ShortGzipMember, gzipReadBound } from '../format/stargz/gzip.js';
import { FEATURE_TARFS, FEATURE_ZRAN } from '../format/rafs/blob-table.js';
import { CHUNK_COMPRESSED, type BlobInfo, type ChunkInfo, type ImageNode, type RafsImage } from './model.js';

export interface BlobLocation {
  /** Directory holding blobs named by their id. */
  blobDir?: string;
  /** One blob file, for an image with exactly one blob. */
  blob?: string;
  /** Explicit id -> file. */
  files?: Map<string, string>;
}

/** A blob whose chunks are gzip members of an eStargz layer, each read by its bounded size. */
export const gzipMembers = (blob: BlobInfo) => blob.compressor === 'gzip' && (blob.features & FEATURE_ZRAN) === 0;

export class BlobReader {
  private readonly fds = new Map<number, { fd: number; size: number; file: string }>();

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
    let storedSize = c.compressedSize;
    if (c.compressedOffset + storedSize > h.size) {
      // A gzip member's size is an upper bound (stargz: blob.md §4): it may end before that, not start past the file.
      if (gzipMembers(blob) && c.compressedOffset < h.size) storedSize = h.size - c.compressedOffset;
      else throw new NydusError('SOURCE', `blob is shorter than referenced: chunk ${c.index} needs bytes up to ${c.compressedOffset + c.compressedSize}, file has ${h.size}`, { path: h.file });
    }
    const stored = into && into.length >= storedSize ? Buffer.from(into.buffer, into.byteOffset, storedSize) : Buffer.allocUnsafe(storedSize);
    this.readInto(h, stored, c.compressedOffset);
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

  private readInto(h: { fd: number; file: string }, into: Buffer, at: number): void {
    try {
      fs.readSync(h.fd, into, 0, into.length, at);
    } catch (e) {
      throw fsError('SOURCE', h.file, e);
    }
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
