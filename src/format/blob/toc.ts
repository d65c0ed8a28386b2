// rafs.blob.toc entries, 128 bytes each (blob.md §5.1).
import { formatError } from '../../errors.js';
import { need, putU64, u64 } from '../util.js';

export const SIZE = 128;
const KNOWN_FLAGS = 0x7;

export const NAME_IMAGE_BLOB = 'image.blob';
export const NAME_BLOB_META = 'blob.meta';
export const NAME_BLOB_META_HEADER = 'blob.meta.header';
export const NAME_BLOB_DIGEST = 'blob.digest';
export const NAME_IMAGE_BOOT = 'image.boot';
export const NAME_TOC = 'rafs.blob.toc';

export interface TocEntry {
  /** Compression bit: 0x1 none, 0x2 zstd, 0x4 lz4_block. */
  flags: number;
  name: string;
  uncompressed_digest: Buffer;
  compressed_offset: number;
  compressed_size: number;
  uncompressed_size: number;
}

export function encode(e: TocEntry): Buffer {
  const b = Buffer.alloc(SIZE);
  b.writeUInt32LE(e.flags, 0);
  const name = Buffer.from(e.name, 'latin1');
  if (name.length > 16) throw formatError('toc_entry', 'name', e.name, 'longer than 16 bytes');
  name.copy(b, 8);
  e.uncompressed_digest.copy(b, 24, 0, 32);
  putU64(b, 56, e.compressed_offset);
  putU64(b, 64, e.compressed_size);
  putU64(b, 72, e.uncompressed_size);
  return b;
}

export function decode(buf: Buffer, off: number): TocEntry {
  need(buf, off, SIZE, 'toc_entry');
  const flags = buf.readUInt32LE(off);
  if ((flags & ~KNOWN_FLAGS) !== 0 || [1, 2, 4].indexOf(flags) < 0) throw formatError('toc_entry', 'flags', `0x${flags.toString(16)}`, 'expected exactly one compression bit');
  const raw = buf.subarray(off + 8, off + 24);
  const nul = raw.indexOf(0);
  // reserved2 (bytes 80-127) is ignored: pre-2.2 builders left garbage there.
  return {
    flags,
    name: raw.subarray(0, nul < 0 ? 16 : nul).toString('latin1'),
    uncompressed_digest: Buffer.from(buf.subarray(off + 24, off + 56)),
    compressed_offset: u64(buf, off + 56, 'toc_entry', 'compressed_offset'),
    compressed_size: u64(buf, off + 64, 'toc_entry', 'compressed_size'),
    uncompressed_size: u64(buf, off + 72, 'toc_entry', 'uncompressed_size'),
  };
}

export function decodeAll(data: Buffer): TocEntry[] {
  if (data.length % SIZE !== 0) throw formatError('toc', 'size', data.length, `not a multiple of ${SIZE}`);
  const out: TocEntry[] = [];
  for (let off = 0; off < data.length; off += SIZE) out.push(decode(data, off));
  return out;
}
