// Chunk-based files: the format word in i_u and the 8-byte index entries (rafs-v6.md §3.1-3.2).
// RAFS splits the EROFS fields its own way: bytes 0-1 and 3 carry the blob chunk-info index,
// byte 2 the device id (blob index + 1); the kernel masks the device id and ignores the rest.
import { formatError } from '../../errors.js';
import { need } from '../util.js';

export const SIZE = 8;
export const FORMAT_INDEXES = 0x20;
const FORMAT_48BIT = 0x40;

export interface ChunkIndex {
  /** Index into the blob's chunk-info array (24 bits). */
  ci_index: number;
  /** blob_index + 1. */
  device_id: number;
  /** uncompressed_offset / block size. */
  blkaddr: number;
}

/** i_u of a chunk-based inode: log2(chunk size) - blkszbits, plus the INDEXES bit. */
export function formatWord(chunkSize: number, blkszbits: number): number {
  return FORMAT_INDEXES | (Math.log2(chunkSize) - blkszbits);
}

export function parseFormatWord(word: number, blkszbits: number): number {
  if ((word & FORMAT_INDEXES) === 0) throw formatError('chunk_format', 'i_u', `0x${word.toString(16)}`, 'only chunk indexes are supported');
  if ((word & FORMAT_48BIT) !== 0) throw formatError('chunk_format', 'i_u', `0x${word.toString(16)}`, '48-bit chunk addressing is not RAFS');
  return 2 ** ((word & 0x1f) + blkszbits);
}

export function encode(c: ChunkIndex, out: Buffer, off: number): void {
  if (c.ci_index > 0xffffff) throw formatError('chunk_index', 'ci_index', c.ci_index, 'more than 2^24 chunks in a blob');
  if (c.device_id < 1 || c.device_id > 254) throw formatError('chunk_index', 'device_id', c.device_id, 'must be 1..254');
  out.writeUInt16LE(c.ci_index & 0xffff, off);
  out.writeUInt8(c.device_id, off + 2);
  out.writeUInt8(c.ci_index >>> 16, off + 3);
  out.writeUInt32LE(c.blkaddr >>> 0, off + 4);
}

/**
 * encode's bytes from the fields, written through `view` (a DataView of out's memory): no entry
 * object, for a bootstrap's index per chunk of every file. Fields encode would refuse, or write
 * otherwise, go through it (and its errors).
 */
export function encodeInto(out: Buffer, view: DataView, off: number, ciIndex: number, deviceId: number, blkaddr: number): void {
  if ((ciIndex >>> 0) !== ciIndex || ciIndex > 0xffffff || (deviceId >>> 0) !== deviceId || deviceId < 1 || deviceId > 254) {
    encode({ ci_index: ciIndex, device_id: deviceId, blkaddr }, out, off);
    return;
  }
  view.setUint16(off, ciIndex & 0xffff, true);
  out[off + 2] = deviceId;
  out[off + 3] = ciIndex >>> 16;
  // ToUint32, as encode's `blkaddr >>> 0`.
  view.setUint32(off + 4, blkaddr, true);
}

export function decode(buf: Buffer, off: number): ChunkIndex {
  need(buf, off, SIZE, 'chunk_index');
  return {
    ci_index: buf.readUInt16LE(off) | (buf.readUInt8(off + 3) << 16),
    device_id: buf.readUInt8(off + 2),
    blkaddr: buf.readUInt32LE(off + 4),
  };
}
