// The bootstrap's chunk-info table entry, 80 bytes (RafsV5ChunkInfo layout; rafs-v6.md §3.4).
import { need, putU64, setU64, u64 } from '../util.js';

export const SIZE = 80;

export const FLAG_COMPRESSED = 0x1;
export const FLAG_ENCRYPTED = 0x4;
export const FLAG_BATCH = 0x8;
export const FLAG_HAS_CRC32 = 0x10;

export interface ChunkInfoEntry {
  digest: Buffer;
  blob_index: number;
  flags: number;
  compressed_size: number;
  uncompressed_size: number;
  compressed_offset: number;
  uncompressed_offset: number;
  file_offset: number;
  index: number;
  crc32: number;
}

export function encode(c: ChunkInfoEntry, out: Buffer, off: number): void {
  c.digest.copy(out, off, 0, 32);
  out.writeUInt32LE(c.blob_index, off + 32);
  out.writeUInt32LE(c.flags, off + 36);
  out.writeUInt32LE(c.compressed_size, off + 40);
  out.writeUInt32LE(c.uncompressed_size, off + 44);
  putU64(out, off + 48, c.compressed_offset);
  putU64(out, off + 56, c.uncompressed_offset);
  putU64(out, off + 64, c.file_offset);
  out.writeUInt32LE(c.index, off + 72);
  out.writeUInt32LE(c.crc32 >>> 0, off + 76);
}

const isU32 = (v: number) => (v >>> 0) === v;
const isU64 = (v: number) => Number.isSafeInteger(v) && v >= 0;

/**
 * encode's bytes from the fields, written through `view` (a DataView of out's memory): no entry
 * object, for a bootstrap's entry per chunk. The digest is the 32 bytes of `digests` at
 * digestAt (a shorter digest zero-padded there, as encode leaves it). Fields encode would refuse
 * go through it (and its errors).
 */
export function encodeInto(
  out: Buffer, view: DataView, off: number, digests: Uint8Array, digestAt: number, blobIndex: number, flags: number, compressedSize: number,
  uncompressedSize: number, compressedOffset: number, uncompressedOffset: number, fileOffset: number, index: number, crc32: number,
): void {
  if (!(isU32(blobIndex) && isU32(flags) && isU32(compressedSize) && isU32(uncompressedSize) && isU32(index) && isU64(compressedOffset) && isU64(uncompressedOffset) && isU64(fileOffset))) {
    encode({
      digest: Buffer.from(digests.buffer, digests.byteOffset + digestAt, 32), blob_index: blobIndex, flags, compressed_size: compressedSize,
      uncompressed_size: uncompressedSize, compressed_offset: compressedOffset, uncompressed_offset: uncompressedOffset, file_offset: fileOffset, index, crc32,
    }, out, off);
    return;
  }
  for (let i = 0; i < 32; i++) out[off + i] = digests[digestAt + i];
  view.setUint32(off + 32, blobIndex, true);
  view.setUint32(off + 36, flags, true);
  view.setUint32(off + 40, compressedSize, true);
  view.setUint32(off + 44, uncompressedSize, true);
  setU64(view, off + 48, compressedOffset);
  setU64(view, off + 56, uncompressedOffset);
  setU64(view, off + 64, fileOffset);
  view.setUint32(off + 72, index, true);
  view.setUint32(off + 76, crc32 >>> 0, true);
}

export function decode(buf: Buffer, off: number): ChunkInfoEntry {
  need(buf, off, SIZE, 'chunk_info');
  return {
    digest: Buffer.from(buf.subarray(off, off + 32)),
    blob_index: buf.readUInt32LE(off + 32),
    flags: buf.readUInt32LE(off + 36),
    compressed_size: buf.readUInt32LE(off + 40),
    uncompressed_size: buf.readUInt32LE(off + 44),
    compressed_offset: u64(buf, off + 48, 'chunk_info', 'compressed_offset'),
    uncompressed_offset: u64(buf, off + 56, 'chunk_info', 'uncompressed_offset'),
    file_offset: u64(buf, off + 64, 'chunk_info', 'file_offset'),
    index: buf.readUInt32LE(off + 72),
    crc32: buf.readUInt32LE(off + 76),
  };
}
