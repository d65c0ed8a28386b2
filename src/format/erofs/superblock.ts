// EROFS on-disk superblock at byte 1024, as RAFS v6 writes it (rafs-v6.md §1.2).
import { formatError } from '../../errors.js';
import { cstr, need, putU64, u64 } from '../util.js';

export const SIZE = 128;
export const OFFSET = 1024;
export const MAGIC = 0xe0f5e1e2;
export const FEATURE_COMPAT_RAFS_V6 = 0x4000_0000;
export const FEATURE_INCOMPAT_CHUNKED_FILE = 0x4;
export const FEATURE_INCOMPAT_DEVICE_TABLE = 0x8;
export const RAFS_INCOMPAT = FEATURE_INCOMPAT_CHUNKED_FILE | FEATURE_INCOMPAT_DEVICE_TABLE;
/** Device slots start at 11 x 128 = 1408, right after the RAFS extended superblock. */
export const DEVT_SLOTOFF = 11;

export interface Superblock {
  magic: number;
  checksum: number;
  feature_compat: number;
  blkszbits: number;
  sb_extslots: number;
  root_nid: number;
  inos: number;
  build_time: number;
  build_time_nsec: number;
  blocks: number;
  meta_blkaddr: number;
  xattr_blkaddr: number;
  uuid: Buffer;
  volume_name: string;
  feature_incompat: number;
  u1: number;
  extra_devices: number;
  devt_slotoff: number;
}

export function encode(sb: Superblock): Buffer {
  const b = Buffer.alloc(SIZE);
  b.writeUInt32LE(sb.magic, 0);
  b.writeUInt32LE(sb.checksum, 4);
  b.writeUInt32LE(sb.feature_compat, 8);
  b.writeUInt8(sb.blkszbits, 12);
  b.writeUInt8(sb.sb_extslots, 13);
  b.writeUInt16LE(sb.root_nid, 14);
  putU64(b, 16, sb.inos);
  putU64(b, 24, sb.build_time);
  b.writeUInt32LE(sb.build_time_nsec, 32);
  b.writeUInt32LE(sb.blocks, 36);
  b.writeUInt32LE(sb.meta_blkaddr, 40);
  b.writeUInt32LE(sb.xattr_blkaddr, 44);
  sb.uuid.copy(b, 48, 0, 16);
  b.write(sb.volume_name, 64, 15, 'latin1');
  b.writeUInt32LE(sb.feature_incompat, 80);
  b.writeUInt16LE(sb.u1, 84);
  b.writeUInt16LE(sb.extra_devices, 86);
  b.writeUInt16LE(sb.devt_slotoff, 88);
  return b;
}

export function decode(buf: Buffer, off = OFFSET): Superblock {
  need(buf, off, SIZE, 'superblock');
  const sb: Superblock = {
    magic: buf.readUInt32LE(off),
    checksum: buf.readUInt32LE(off + 4),
    feature_compat: buf.readUInt32LE(off + 8),
    blkszbits: buf.readUInt8(off + 12),
    sb_extslots: buf.readUInt8(off + 13),
    root_nid: buf.readUInt16LE(off + 14),
    inos: u64(buf, off + 16, 'superblock', 'inos'),
    build_time: u64(buf, off + 24, 'superblock', 'build_time'),
    build_time_nsec: buf.readUInt32LE(off + 32),
    blocks: buf.readUInt32LE(off + 36),
    meta_blkaddr: buf.readUInt32LE(off + 40),
    xattr_blkaddr: buf.readUInt32LE(off + 44),
    uuid: Buffer.from(buf.subarray(off + 48, off + 64)),
    volume_name: cstr(buf, off + 64, 16),
    feature_incompat: buf.readUInt32LE(off + 80),
    u1: buf.readUInt16LE(off + 84),
    extra_devices: buf.readUInt16LE(off + 86),
    devt_slotoff: buf.readUInt16LE(off + 88),
  };
  return sb;
}

/** The checks the RAFS loader makes (rafs-v6.md §1.2, §9 trap 1). */
export function validate(sb: Superblock): void {
  const bad = (field: keyof Superblock, why: string) => formatError('superblock', field, sb[field], why);
  if (sb.magic !== MAGIC) throw bad('magic', `expected 0x${MAGIC.toString(16)} (not an EROFS/RAFS v6 bootstrap)`);
  if (sb.checksum !== 0) throw bad('checksum', 'RAFS requires 0');
  if ((sb.feature_compat & FEATURE_COMPAT_RAFS_V6) === 0) throw bad('feature_compat', 'RAFS_V6 bit 0x40000000 missing');
  if (sb.blkszbits !== 12 && sb.blkszbits !== 9) throw bad('blkszbits', 'expected 12 (or 9 for tarfs)');
  if (sb.sb_extslots !== 0) throw bad('sb_extslots', 'RAFS requires 0');
  if (sb.inos === 0) throw bad('inos', 'must be > 0');
  if (sb.xattr_blkaddr !== 0) throw bad('xattr_blkaddr', 'shared xattrs are not used by RAFS');
  if (sb.feature_incompat !== RAFS_INCOMPAT) throw bad('feature_incompat', 'RAFS requires exactly 0xc');
  if (sb.u1 !== 0) throw bad('u1', 'RAFS requires 0');
  if (sb.devt_slotoff !== DEVT_SLOTOFF) throw bad('devt_slotoff', 'RAFS requires 11');
}
