// Batch contexts of blob.meta (BatchInflateContext, 40 bytes; blob.md §4.3): one per batch chunk,
// the small chunks packed together and compressed as one unit. They follow the chunk-info v2
// array in the uncompressed table; the header's zran offset/size/count fields locate them.
import { need } from '../util.js';

export const SIZE = 40;

export interface BatchContext {
  /** Stored size of the whole batch (compressed, then encrypted). */
  compressed_size: number;
  /** Raw size of the packed small chunks (not 4 KiB-aligned). */
  uncompressed_batch_size: number;
}

export function encode(c: BatchContext, out: Buffer, off: number): void {
  out.writeUInt32LE(c.compressed_size, off);
  out.writeUInt32LE(c.uncompressed_batch_size, off + 4);
  out.fill(0, off + 8, off + SIZE);
}

export function decode(buf: Buffer, off: number): BatchContext {
  need(buf, off, SIZE, 'batch_context');
  return { compressed_size: buf.readUInt32LE(off), uncompressed_batch_size: buf.readUInt32LE(off + 4) };
}
