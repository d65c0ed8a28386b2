// RAFS v6 extended superblock at byte 1152 (rafs-v6.md §1.3).
import { formatError } from '../../errors.js';
import { need, putU64, u64 } from '../util.js';

export const SIZE = 256;
export const OFFSET = 1152;

export const FLAG_COMPRESSION_NONE = 0x1;
export const FLAG_COMPRESSION_LZ4 = 0x2;
export const FLAG_HASH_BLAKE3 = 0x4;
export const FLAG_HASH_SHA256 = 0x8;
export const FLAG_EXPLICIT_UID_GID = 0x10;
export const FLAG_HAS_XATTR = 0x20;
export const FLAG_COMPRESSION_GZIP = 0x40;
export const FLAG_COMPRESSION_ZSTD = 0x80;
export const FLAG_INLINED_CHUNK_DIGEST = 0x100;
export const FLAG_TARFS_MODE = 0x200;
export const FLAG_ENCRYPTION_NONE = 0x0100_0000;
export const FLAG_ENCRYPTION_AES128XTS = 0x0200_0000;
const KNOWN_FLAGS = 0x3ff | FLAG_ENCRYPTION_NONE | FLAG_ENCRYPTION_AES128XTS;

export interface ExtSuperblock {
  flags: number;
  blob_table_offset: number;
  blob_table_size: number;
  chunk_size: number;
  chunk_table_offset: number;
  chunk_table_size: number;
  prefetch_table_offset: number;
  prefetch_table_size: number;
}

export function encode(e: ExtSuperblock): Buffer {
  const b = Buffer.alloc(SIZE);
  putU64(b, 0, e.flags);
  putU64(b, 8, e.blob_table_offset);
  b.writeUInt32LE(e.blob_table_size, 16);
  b.writeUInt32LE(e.chunk_size, 20);
  putU64(b, 24, e.chunk_table_offset);
  putU64(b, 32, e.chunk_table_size);
  putU64(b, 40, e.prefetch_table_offset);
  b.writeUInt32LE(e.prefetch_table_size, 48);
  return b;
}

export function decode(buf: Buffer, off = OFFSET): ExtSuperblock {
  need(buf, off, SIZE, 'ext_superblock');
  return {
    flags: u64(buf, off, 'ext_superblock', 'flags'),
    blob_table_offset: u64(buf, off + 8, 'ext_superblock', 'blob_table_offset'),
    blob_table_size: buf.readUInt32LE(off + 16),
    chunk_size: buf.readUInt32LE(off + 20),
    chunk_table_offset: u64(buf, off + 24, 'ext_superblock', 'chunk_table_offset'),
    chunk_table_size: u64(buf, off + 32, 'ext_superblock', 'chunk_table_size'),
    prefetch_table_offset: u64(buf, off + 40, 'ext_superblock', 'prefetch_table_offset'),
    prefetch_table_size: buf.readUInt32LE(off + 48),
  };
}

/** The RAFS loader's checks; `length` is the bootstrap's size. */
export function validate(e: ExtSuperblock, length: number): void {
  const bad = (field: keyof ExtSuperblock, why: string) => formatError('ext_superblock', field, `0x${e[field].toString(16)}`, why);
  if ((e.flags & ~KNOWN_FLAGS) !== 0) throw bad('flags', 'unknown flag bits');
  if (e.chunk_size < 0x1000 || e.chunk_size > 0x1000000 || (e.chunk_size & (e.chunk_size - 1)) !== 0) {
    throw bad('chunk_size', 'must be a power of two from 0x1000 to 0x1000000');
  }
  if (e.blob_table_offset < 4096 || e.blob_table_offset % 4096 !== 0) throw bad('blob_table_offset', 'must be 4 KiB-aligned and >= 4096');
  if (e.blob_table_size % 256 !== 0 || e.blob_table_offset + e.blob_table_size > length) throw bad('blob_table_size', 'blob table out of bounds');
  if (e.chunk_table_size % 80 !== 0) throw bad('chunk_table_size', 'not a multiple of 80');
  if (e.chunk_table_size > 0 && (e.chunk_table_offset % 4096 !== 0 || e.chunk_table_offset + e.chunk_table_size > length)) {
    throw bad('chunk_table_offset', 'chunk table out of bounds or not 4 KiB-aligned');
  }
  if (e.prefetch_table_size % 4 !== 0 || (e.prefetch_table_size > 0 && e.prefetch_table_offset + e.prefetch_table_size > length)) {
    throw bad('prefetch_table_size', 'prefetch table out of bounds');
  }
}
