// EROFS inodes: extended (64 B, what RAFS writes) and compact (32 B, decoded only) (rafs-v6.md §2).
import { formatError } from '../../errors.js';
import { need, putU64, u64 } from '../util.js';

export const EXTENDED_SIZE = 64;
export const COMPACT_SIZE = 32;
/** Inodes sit on 32-byte slots: offset = meta_blkaddr x B + nid x 32. */
export const SLOT_SIZE = 32;
/** Where i_u (first data block, chunk format word or rdev) sits in an extended inode. */
export const I_U_OFFSET = 16;

export const LAYOUT_FLAT_PLAIN = 0;
export const LAYOUT_FLAT_INLINE = 2;
export const LAYOUT_CHUNK_BASED = 4;

export interface Inode {
  extended: boolean;
  layout: number;
  i_xattr_icount: number;
  i_mode: number;
  i_size: number;
  /** Raw union: first data block, chunk format word or rdev, by file type. */
  i_u: number;
  i_ino: number;
  i_uid: number;
  i_gid: number;
  i_mtime: number;
  i_mtime_nsec: number;
  i_nlink: number;
}

export function encodeExtended(ino: Inode): Buffer {
  const b = Buffer.alloc(EXTENDED_SIZE);
  encodeExtendedInto(ino, b, 0);
  return b;
}

/**
 * The same 64 bytes written at off in b, which must be zeroed there (the reserved bytes are left
 * as they are): no buffer per inode, no fill per inode.
 */
export function encodeExtendedInto(ino: Inode, b: Buffer, off: number): void {
  b.writeUInt16LE(1 | (ino.layout << 1), off);
  b.writeUInt16LE(ino.i_xattr_icount, off + 2);
  b.writeUInt16LE(ino.i_mode, off + 4);
  putU64(b, off + 8, ino.i_size);
  b.writeUInt32LE(ino.i_u >>> 0, off + I_U_OFFSET);
  b.writeUInt32LE(ino.i_ino >>> 0, off + 20);
  b.writeUInt32LE(ino.i_uid >>> 0, off + 24);
  b.writeUInt32LE(ino.i_gid >>> 0, off + 28);
  putU64(b, off + 32, ino.i_mtime);
  b.writeUInt32LE(ino.i_mtime_nsec, off + 40);
  b.writeUInt32LE(ino.i_nlink, off + 44);
}

/** Decodes the inode at off; `epoch` is the superblock build_time compact inodes inherit. */
export function decode(buf: Buffer, off: number, epoch = 0): Inode {
  need(buf, off, COMPACT_SIZE, 'inode');
  const format = buf.readUInt16LE(off);
  const extended = (format & 1) === 1;
  const layout = (format >> 1) & 0x7;
  if (layout !== LAYOUT_FLAT_PLAIN && layout !== LAYOUT_FLAT_INLINE && layout !== LAYOUT_CHUNK_BASED) {
    throw formatError('inode', 'i_format', `0x${format.toString(16)}`, `unsupported data layout ${layout} at offset ${off}`);
  }
  if (extended) {
    need(buf, off, EXTENDED_SIZE, 'inode');
    return {
      extended, layout,
      i_xattr_icount: buf.readUInt16LE(off + 2),
      i_mode: buf.readUInt16LE(off + 4),
      i_size: u64(buf, off + 8, 'inode', 'i_size'),
      i_u: buf.readUInt32LE(off + 16),
      i_ino: buf.readUInt32LE(off + 20),
      i_uid: buf.readUInt32LE(off + 24),
      i_gid: buf.readUInt32LE(off + 28),
      i_mtime: u64(buf, off + 32, 'inode', 'i_mtime'),
      i_mtime_nsec: buf.readUInt32LE(off + 40),
      i_nlink: buf.readUInt32LE(off + 44),
    };
  }
  return {
    extended, layout,
    i_xattr_icount: buf.readUInt16LE(off + 2),
    i_mode: buf.readUInt16LE(off + 4),
    i_nlink: buf.readUInt16LE(off + 6),
    i_size: buf.readUInt32LE(off + 8),
    i_u: buf.readUInt32LE(off + 16),
    i_ino: buf.readUInt32LE(off + 20),
    i_uid: buf.readUInt16LE(off + 24),
    i_gid: buf.readUInt16LE(off + 26),
    i_mtime: epoch,
    i_mtime_nsec: 0,
  };
}

export const inodeSize = (ino: Pick<Inode, 'extended'>) => (ino.extended ? EXTENDED_SIZE : COMPACT_SIZE);

/** Linux new_encode_dev: what EROFS stores as rdev. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}
export function decodeDev(rdev: number): { major: number; minor: number } {
  return { major: (rdev & 0xfff00) >>> 8, minor: ((rdev & 0xff) | ((rdev >>> 12) & 0xfff00)) >>> 0 };
}
