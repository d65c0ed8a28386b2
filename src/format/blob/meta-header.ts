// blob.meta header (BlobCompressionContextHeader), 4096 bytes (blob.md §4.1).
import { formatError } from '../../errors.js';
import { need, putU64, u64 } from '../util.js';

export const SIZE = 4096;
export const MAGIC = 0xb10bb10b;

export interface MetaHeader {
  s_features: number;
  s_ci_compressor: number;
  s_ci_entries: number;
  s_ci_offset: number;
  s_ci_compressed_size: number;
  s_ci_uncompressed_size: number;
  s_ci_zran_offset: number;
  s_ci_zran_size: number;
  s_ci_zran_count: number;
}

export function encode(h: MetaHeader): Buffer {
  const b = Buffer.alloc(SIZE);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt32LE(h.s_features >>> 0, 4);
  b.writeUInt32LE(h.s_ci_compressor, 8);
  b.writeUInt32LE(h.s_ci_entries, 12);
  putU64(b, 16, h.s_ci_offset);
  putU64(b, 24, h.s_ci_compressed_size);
  putU64(b, 32, h.s_ci_uncompressed_size);
  putU64(b, 40, h.s_ci_zran_offset);
  putU64(b, 48, h.s_ci_zran_size);
  b.writeUInt32LE(h.s_ci_zran_count, 56);
  b.writeUInt32LE(MAGIC, 4092);
  return b;
}

export function decode(buf: Buffer, off = 0): MetaHeader {
  need(buf, off, SIZE, 'blob_meta_header');
  for (const at of [0, 4092]) {
    const m = buf.readUInt32LE(off + at);
    if (m !== MAGIC) throw formatError('blob_meta_header', at === 0 ? 's_magic' : 's_magic2', `0x${m.toString(16)}`, 'bad magic');
  }
  const f = (o: number, n: string) => u64(buf, off + o, 'blob_meta_header', n);
  return {
    s_features: buf.readUInt32LE(off + 4),
    s_ci_compressor: buf.readUInt32LE(off + 8),
    s_ci_entries: buf.readUInt32LE(off + 12),
    s_ci_offset: f(16, 's_ci_offset'),
    s_ci_compressed_size: f(24, 's_ci_compressed_size'),
    s_ci_uncompressed_size: f(32, 's_ci_uncompressed_size'),
    s_ci_zran_offset: f(40, 's_ci_zran_offset'),
    s_ci_zran_size: f(48, 's_ci_zran_size'),
    s_ci_zran_count: buf.readUInt32LE(off + 56),
  };
}
