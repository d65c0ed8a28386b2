// blob.meta chunk-info entries: v1 (16 B) and v2 (24 B) (blob.md §4.3).
// v1 masks the 4 KiB-aligned offset in place and stores sizes minus 1; v2 shifts the offset
// and stores only the uncompressed size minus 1.
import { formatError } from '../../errors.js';
import { need } from '../util.js';

export const V1_SIZE = 16;
export const V2_SIZE = 24;

export const V2_FLAG_COMPRESSED = 0x01;
export const V2_FLAG_ZRAN = 0x02;
export const V2_FLAG_BATCH = 0x04;
export const V2_FLAG_ENCRYPTED = 0x08;
export const V2_FLAG_HAS_CRC32 = 0x10;

export interface BlobChunkInfo {
  compressed_offset: number;
  compressed_size: number;
  uncompressed_offset: number;
  uncompressed_size: number;
  /** v2 only. */
  flags: number;
  /** v2 only: CRC32 (low word) or zran/batch context and offset. */
  data: bigint;
}

const M20 = (1n << 20n) - 1n;

export function encodeV1(c: BlobChunkInfo, out: Buffer, off: number): void {
  encodeV1Into(out, new DataView(out.buffer, out.byteOffset, out.byteLength), off, c.compressed_offset, c.compressed_size, c.uncompressed_offset, c.uncompressed_size);
}

/**
 * encodeV1 from the fields, written through `view` (a DataView of out's memory): no entry object,
 * for a blob's entry per chunk.
 */
export function encodeV1Into(out: Buffer, view: DataView, off: number, compressedOffset: number, compressedSize: number, uncompressedOffset: number, uncompressedSize: number): void {
  const uo = uncompressedOffset;
  const co = compressedOffset;
  if (uo % 4096 !== 0) throw formatError('chunk_info_v1', 'uncompressed_offset', uo, 'not 4 KiB-aligned');
  if (uncompressedSize < 1 || uncompressedSize > 0x1000000) throw formatError('chunk_info_v1', 'uncompressed_size', uncompressedSize, 'must be 1..16 MiB');
  if (compressedSize < 1 || compressedSize > 0x1000000) throw formatError('chunk_info_v1', 'compressed_size', compressedSize, 'must be 1..16 MiB');
  // Offsets that fit their fields (44 and 40 bits): the two words in 32-bit halves, no BigInt.
  // Else the BigInt form below, as it always was.
  if (Number.isSafeInteger(uo) && uo >= 0 && uo < 2 ** 44 && Number.isSafeInteger(co) && co >= 0 && co < 2 ** 40) {
    const u = uncompressedSize - 1;
    const z = compressedSize - 1;
    view.setUint32(off, ((u >>> 20) << 8 | (uo % 2 ** 32)) >>> 0, true);
    view.setUint32(off + 4, (Math.floor(uo / 2 ** 32) | (u & 0xfffff) << 12) >>> 0, true);
    view.setUint32(off + 8, co % 2 ** 32, true);
    view.setUint32(off + 12, (Math.floor(co / 2 ** 32) | (z >>> 20) << 8 | (z & 0xfffff) << 12) >>> 0, true);
    return;
  }
  const us = BigInt(uncompressedSize - 1);
  const cs = BigInt(compressedSize - 1);
  const uoff = BigInt(uo) & 0xfff_ffff_f000n;
  const w0 = ((us >> 20n) << 8n) | uoff | ((us & M20) << 44n);
  const w1 = BigInt(co) | ((cs >> 20n) << 40n) | ((cs & M20) << 44n);
  out.writeBigUInt64LE(w0, off);
  out.writeBigUInt64LE(w1, off + 8);
}

export function decodeV1(buf: Buffer, off: number): BlobChunkInfo {
  need(buf, off, V1_SIZE, 'chunk_info_v1');
  const w0 = buf.readBigUInt64LE(off);
  const w1 = buf.readBigUInt64LE(off + 8);
  const us = (((w0 >> 8n) & 0xfn) << 20n) | (w0 >> 44n);
  const cs = (((w1 >> 40n) & 0xfn) << 20n) | (w1 >> 44n);
  const uncompressed_size = Number(us) + 1;
  const compressed_size = Number(cs) + 1;
  return {
    uncompressed_offset: Number(w0 & 0xfff_ffff_f000n),
    uncompressed_size,
    compressed_offset: Number(w1 & 0xff_ffff_ffffn),
    compressed_size,
    flags: compressed_size !== uncompressed_size ? V2_FLAG_COMPRESSED : 0,
    data: 0n,
  };
}

export function encodeV2(c: BlobChunkInfo, out: Buffer, off: number): void {
  if (c.uncompressed_offset % 4096 !== 0) throw formatError('chunk_info_v2', 'uncompressed_offset', c.uncompressed_offset, 'not 4 KiB-aligned');
  if (c.compressed_size > 0xffffff) throw formatError('chunk_info_v2', 'compressed_size', c.compressed_size, 'larger than 0xffffff');
  const w0 = BigInt(c.uncompressed_offset / 4096) | (BigInt(c.uncompressed_size - 1) << 32n) | (BigInt(c.flags & 0xff) << 56n);
  const w1 = BigInt(c.compressed_offset) | (BigInt(c.compressed_size) << 40n);
  out.writeBigUInt64LE(w0, off);
  out.writeBigUInt64LE(w1, off + 8);
  out.writeBigUInt64LE(c.data, off + 16);
}

export function decodeV2(buf: Buffer, off: number): BlobChunkInfo {
  need(buf, off, V2_SIZE, 'chunk_info_v2');
  const w0 = buf.readBigUInt64LE(off);
  const w1 = buf.readBigUInt64LE(off + 8);
  return {
    uncompressed_offset: Number(w0 & 0xffff_ffffn) * 4096,
    uncompressed_size: Number((w0 >> 32n) & 0xff_ffffn) + 1,
    flags: Number(w0 >> 56n),
    compressed_offset: Number(w1 & 0xff_ffff_ffffn),
    compressed_size: Number(w1 >> 40n),
    data: buf.readBigUInt64LE(off + 16),
  };
}
