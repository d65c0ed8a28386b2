// EROFS directory entries and directory blocks (rafs-v6.md §4).
import { formatError } from '../../errors.js';
import { compareBytes, need, putU64, u64 } from '../util.js';

export const SIZE = 12;

export const FT_UNKNOWN = 0;
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_CHRDEV = 3;
export const FT_BLKDEV = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;

export interface Dirent {
  nid: number;
  name: Buffer;
  file_type: number;
}

/** File type of a dirent from st_mode. */
export function fileTypeOfMode(mode: number): number {
  switch (mode & 0o170000) {
    case 0o100000: return FT_REG_FILE;
    case 0o040000: return FT_DIR;
    case 0o020000: return FT_CHRDEV;
    case 0o060000: return FT_BLKDEV;
    case 0o010000: return FT_FIFO;
    case 0o140000: return FT_SOCK;
    case 0o120000: return FT_SYMLINK;
    default: return FT_UNKNOWN;
  }
}

/** Byte-wise order the kernel binary-searches by; a shorter prefix sorts first. */
export const compareNames = (a: Buffer, b: Buffer) => compareBytes(a, b);

/**
 * Splits sorted entries into blocks: each block is N dirents then N names, packed.
 * Returns the blocks' used byte counts and the entries of each.
 */
export function packBlocks(entries: Dirent[], blockSize: number): Dirent[][] {
  const blocks: Dirent[][] = [];
  let cur: Dirent[] = [];
  let used = 0;
  for (const e of entries) {
    const len = SIZE + e.name.length;
    if (used + len > blockSize) {
      blocks.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(e);
    used += len;
  }
  if (cur.length > 0) blocks.push(cur);
  return blocks;
}

export const blockUsed = (entries: Dirent[]) => entries.reduce((n, e) => n + SIZE + e.name.length, 0);

/** i_size of a directory: full blocks count whole, the last one by its used bytes. */
export function dirSize(blocks: Dirent[][], blockSize: number): number {
  return (blocks.length - 1) * blockSize + blockUsed(blocks[blocks.length - 1]);
}

export function encodeBlock(entries: Dirent[]): Buffer {
  const out = Buffer.alloc(blockUsed(entries));
  encodeBlockInto(entries, out, 0);
  return out;
}

/** Writes one directory block's dirents and names at `at` in `out`. */
export function encodeBlockInto(entries: Dirent[], out: Buffer, at: number): void {
  let nameoff = entries.length * SIZE;
  // Byte stores and set() (a bootstrap writes one dirent per tree entry): the block's bounds
  // are checked once, the values where they could be out of range.
  if (at < 0 || at + nameoff + entries.reduce((n, e) => n + e.name.length, 0) > out.length) throw new RangeError(`directory block at ${at} does not fit in ${out.length} bytes`);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const off = at + i * SIZE;
    putU64(out, off, e.nid);
    if (nameoff > 0xffff || !(e.file_type >= 0 && e.file_type <= 0xff)) throw new RangeError(`dirent ${i}: name offset ${nameoff} or file type ${e.file_type} out of range`);
    out[off + 8] = nameoff & 0xff;
    out[off + 9] = nameoff >>> 8;
    out[off + 10] = e.file_type;
    out.set(e.name, at + nameoff);
    nameoff += e.name.length;
  }
}

/** Decodes one directory block of `len` meaningful bytes (B, or what i_size leaves for the last one). */
export function decodeBlock(buf: Buffer, off: number, len: number, blockSize: number): Dirent[] {
  need(buf, off, len, 'dirent');
  const first = buf.readUInt16LE(off + 8);
  if (first < SIZE || first >= blockSize || first % SIZE !== 0 || first > len) {
    throw formatError('dirent', 'nameoff', first, `bad first name offset in the directory block at ${off}`);
  }
  const n = first / SIZE;
  const out: Dirent[] = [];
  for (let i = 0; i < n; i++) {
    const d = off + i * SIZE;
    const start = buf.readUInt16LE(d + 8);
    let end = i + 1 < n ? buf.readUInt16LE(d + SIZE + 8) : len;
    if (i + 1 === n) {
      const nul = buf.subarray(off + start, off + end).indexOf(0);
      if (nul >= 0) end = start + nul;
    }
    if (end <= start || end > len) throw formatError('dirent', 'nameoff', start, `bad name bounds in the directory block at ${off}`);
    out.push({ nid: u64(buf, d, 'dirent', 'nid'), file_type: buf.readUInt8(d + 10), name: Buffer.from(buf.subarray(off + start, off + end)) });
  }
  return out;
}
