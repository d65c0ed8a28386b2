// EROFS device slot (RAFS: one per blob), 128 bytes each from devt_slotoff x 128 (rafs-v6.md §1.4).
import { formatError } from '../../errors.js';
import { cstr, need, putCstr } from '../util.js';

export const SIZE = 128;

export interface DeviceSlot {
  /** The blob id, 64 ASCII hex chars (EROFS calls it the tag). */
  blob_id: string;
  blocks: number;
  mapped_blkaddr: number;
}

export function encode(d: DeviceSlot): Buffer {
  const b = Buffer.alloc(SIZE);
  putCstr(b, 0, 64, d.blob_id, 'device_slot', 'blob_id');
  // A blob's block count comes from its (hostile) size claim: name the field, not a RangeError.
  for (const f of ['blocks', 'mapped_blkaddr'] as const) {
    if (!Number.isInteger(d[f]) || d[f] < 0 || d[f] > 0xffff_ffff) throw formatError('device_slot', f, d[f], `blob ${d.blob_id} does not fit 2^32 blocks`);
  }
  b.writeUInt32LE(d.blocks, 64);
  b.writeUInt32LE(d.mapped_blkaddr, 68);
  return b;
}

export function decode(buf: Buffer, off: number): DeviceSlot {
  need(buf, off, SIZE, 'device_slot');
  const d = { blob_id: cstr(buf, off, 64), blocks: buf.readUInt32LE(off + 64), mapped_blkaddr: buf.readUInt32LE(off + 68) };
  if (d.blocks === 0) throw formatError('device_slot', 'blocks', 0, 'a device slot must have blocks');
  return d;
}
