// RAFS v5 on-disk structures (upstream rafs/src/metadata/layout/v5.rs): little-endian, every
// structure starts on an 8-byte boundary, field names as upstream spells them.
//
// Bootstrap layout as upstream writes it, in this order:
//   superblock (8192) | inode table | prefetch table | blob table | extended blob table |
//   per inode, in DFS pre-order: inode (128) + name + symlink, xattr area, chunk infos (80 each)
import { formatError } from '../../errors.js';
import { alignUp, need, putU64, u64 } from '../util.js';
import { isDir, isReg, isSymlink } from '../mode.js';
import * as chunkInfo from './chunk-info.js';

export const ALIGNMENT = 8;
export const MAGIC = 0x5241_4653;
export const VERSION_V5 = 0x500;
export const ROOT_INODE = 1;
/** Longest file name; upstream accepts i_name_size up to MAX_NAME + 1. */
export const MAX_NAME = 255;
export const DEFAULT_CHUNK_SIZE = 0x10_0000;
export const MAX_CHUNK_SIZE = 0x100_0000;
const DIGEST_SIZE = 32;

/** RafsSuperFlags. */
export const SuperFlags = {
  COMPRESSION_NONE: 0x1,
  COMPRESSION_LZ4: 0x2,
  HASH_BLAKE3: 0x4,
  HASH_SHA256: 0x8,
  EXPLICIT_UID_GID: 0x10,
  HAS_XATTR: 0x20,
  COMPRESSION_GZIP: 0x40,
  COMPRESSION_ZSTD: 0x80,
  INLINED_CHUNK_DIGEST: 0x100,
  TARTFS_MODE: 0x200,
  ENCRYPTION_NONE: 0x0100_0000,
  ENCRYPTION_ASE_128_XTS: 0x0200_0000,
} as const;
/** Every bit RafsSuperFlags::from_bits accepts (the named ones plus PRESERVED_COMPAT_0..5). */
export const KNOWN_SUPER_FLAGS = Object.values(SuperFlags).reduce((a, b) => a | b, 0) + 0xfc00_0000;

/** RafsInodeFlags. */
export const InodeFlags = { SYMLINK: 0x1, HARDLINK: 0x2, XATTR: 0x4, HAS_HOLE: 0x8 } as const;
const KNOWN_INODE_FLAGS = 0xf;

/** BlobChunkFlags. */
export const ChunkFlags = { COMPRESSED: 0x1, _HOLECHUNK: 0x2, ENCRYPTED: 0x4, BATCH: 0x8, HAS_CRC32: 0x10 } as const;
const KNOWN_CHUNK_FLAGS = 0x1f;

/** BlobFeatures bit that marks a v5 blob described without an extended blob table. */
export const BLOB_FEATURE_V5_NO_EXT_BLOB_TABLE = 0x8000_0000;

export const align8 = (n: number) => alignUp(n, ALIGNMENT);
const hex = (n: number) => `0x${n.toString(16)}`;

function digest(v: Buffer, structure: string, field: string): Buffer {
  if (v.length !== DIGEST_SIZE) throw formatError(structure, field, v.toString('hex'), `must be ${DIGEST_SIZE} bytes`);
  return v;
}

/** Upstream's MetaRange: [start, start + size) inside the bootstrap after the superblock. */
interface Range { start: number; end: number }
const overlaps = (a: Range, b: Range) => a.start < b.end && a.end > b.start;

// ---------------------------------------------------------------------------------------------
// Superblock: 80 bytes of fields in an 8192-byte region whose rest is reserved (zero).

export const SUPERBLOCK_SIZE = 8192;

export interface RafsV5SuperBlock {
  s_magic: number;
  s_fs_version: number;
  s_sb_size: number;
  /** The chunk size, despite the name. */
  s_block_size: number;
  s_flags: number;
  /** Unique inodes (a hardlinked inode counts once). */
  s_inodes_count: number;
  s_inode_table_offset: number;
  s_prefetch_table_offset: number;
  s_blob_table_offset: number;
  /** Slots in the inode table (one per directory entry, hardlinks included). */
  s_inode_table_entries: number;
  s_prefetch_table_entries: number;
  /** Bytes, not entries. */
  s_blob_table_size: number;
  s_extended_blob_table_entries: number;
  s_extended_blob_table_offset: number;
}

export function decodeSuperBlock(buf: Buffer, off = 0): RafsV5SuperBlock {
  need(buf, off, SUPERBLOCK_SIZE, 'superblock');
  const s = 'superblock';
  return {
    s_magic: buf.readUInt32LE(off),
    s_fs_version: buf.readUInt32LE(off + 4),
    s_sb_size: buf.readUInt32LE(off + 8),
    s_block_size: buf.readUInt32LE(off + 12),
    s_flags: u64(buf, off + 16, s, 's_flags'),
    s_inodes_count: u64(buf, off + 24, s, 's_inodes_count'),
    s_inode_table_offset: u64(buf, off + 32, s, 's_inode_table_offset'),
    s_prefetch_table_offset: u64(buf, off + 40, s, 's_prefetch_table_offset'),
    s_blob_table_offset: u64(buf, off + 48, s, 's_blob_table_offset'),
    s_inode_table_entries: buf.readUInt32LE(off + 56),
    s_prefetch_table_entries: buf.readUInt32LE(off + 60),
    s_blob_table_size: buf.readUInt32LE(off + 64),
    s_extended_blob_table_entries: buf.readUInt32LE(off + 68),
    s_extended_blob_table_offset: u64(buf, off + 72, s, 's_extended_blob_table_offset'),
  };
}

export function encodeSuperBlock(sb: RafsV5SuperBlock): Buffer {
  const b = Buffer.alloc(SUPERBLOCK_SIZE);
  b.writeUInt32LE(sb.s_magic, 0);
  b.writeUInt32LE(sb.s_fs_version, 4);
  b.writeUInt32LE(sb.s_sb_size, 8);
  b.writeUInt32LE(sb.s_block_size, 12);
  putU64(b, 16, sb.s_flags);
  putU64(b, 24, sb.s_inodes_count);
  putU64(b, 32, sb.s_inode_table_offset);
  putU64(b, 40, sb.s_prefetch_table_offset);
  putU64(b, 48, sb.s_blob_table_offset);
  b.writeUInt32LE(sb.s_inode_table_entries, 56);
  b.writeUInt32LE(sb.s_prefetch_table_entries, 60);
  b.writeUInt32LE(sb.s_blob_table_size, 64);
  b.writeUInt32LE(sb.s_extended_blob_table_entries, 68);
  putU64(b, 72, sb.s_extended_blob_table_offset);
  return b;
}

/** A superblock with upstream's defaults, for a writer to fill in. */
export function newSuperBlock(): RafsV5SuperBlock {
  return {
    s_magic: MAGIC, s_fs_version: VERSION_V5, s_sb_size: SUPERBLOCK_SIZE, s_block_size: DEFAULT_CHUNK_SIZE,
    s_flags: 0, s_inodes_count: 0, s_inode_table_offset: 0, s_prefetch_table_offset: 0, s_blob_table_offset: 0,
    s_inode_table_entries: 0, s_prefetch_table_entries: 0, s_blob_table_size: 0,
    s_extended_blob_table_entries: 0, s_extended_blob_table_offset: 0,
  };
}

/** RafsV5SuperBlock::validate: identity, sizes, flags, and that the tables fit and do not overlap. */
export function validateSuperBlock(sb: RafsV5SuperBlock, metaSize: number): void {
  const bad = (field: keyof RafsV5SuperBlock, why: string, show = String(sb[field])) =>
    formatError('superblock', field, show, why);
  if (sb.s_magic !== MAGIC) throw bad('s_magic', `expected ${hex(MAGIC)} ("RAFS"): not a RAFS v5 bootstrap`, hex(sb.s_magic));
  if (sb.s_fs_version !== VERSION_V5) throw bad('s_fs_version', `expected ${hex(VERSION_V5)}`, hex(sb.s_fs_version));
  if (sb.s_sb_size !== SUPERBLOCK_SIZE) throw bad('s_sb_size', `expected ${SUPERBLOCK_SIZE}`);
  if (metaSize <= SUPERBLOCK_SIZE) {
    throw formatError('superblock', 'bootstrap size', metaSize, `must be larger than the ${SUPERBLOCK_SIZE}-byte superblock`);
  }
  const bs = sb.s_block_size;
  if ((bs & (bs - 1)) !== 0 || bs < 0x1000 || bs > MAX_CHUNK_SIZE) {
    throw bad('s_block_size', `must be a power of two in 0x1000..${hex(MAX_CHUNK_SIZE)}`, hex(bs));
  }
  // Bitwise ops see only the low 32 bits, so anything above is checked by magnitude.
  if (((sb.s_flags & ~KNOWN_SUPER_FLAGS) >>> 0) !== 0 || sb.s_flags > 0xffff_ffff) {
    throw bad('s_flags', 'has bits RafsSuperFlags does not define', hex(sb.s_flags));
  }

  const meta: Range = { start: SUPERBLOCK_SIZE, end: metaSize };
  const range = (field: keyof RafsV5SuperBlock, start: number, size: number, alignedSize: boolean): Range => {
    if (start % ALIGNMENT !== 0) throw bad(field, 'not 8-byte aligned');
    if (alignedSize && size % ALIGNMENT !== 0) throw bad(field, `table size ${size} is not a multiple of 8`);
    return { start, end: start + size };
  };
  const inside = (r: Range) => r.start >= meta.start && r.end <= meta.end;

  const inodes = range('s_inode_table_offset', sb.s_inode_table_offset, sb.s_inode_table_entries * 4, false);
  if (sb.s_inodes_count > sb.s_inode_table_entries) {
    throw bad('s_inodes_count', `more than s_inode_table_entries (${sb.s_inode_table_entries})`);
  }
  if (!inside(inodes)) throw bad('s_inode_table_offset', `table of ${sb.s_inode_table_entries} entries does not fit in ${metaSize} bytes`);

  const blobs = range('s_blob_table_offset', sb.s_blob_table_offset, sb.s_blob_table_size, false);
  if (!inside(blobs) || overlaps(blobs, inodes)) {
    throw bad('s_blob_table_offset', `table of ${sb.s_blob_table_size} bytes is outside the bootstrap or overlaps the inode table`);
  }

  const extSize = sb.s_extended_blob_table_entries * EXT_BLOB_ENTRY_SIZE;
  const ext = range('s_extended_blob_table_offset', sb.s_extended_blob_table_offset, extSize, true);
  if (extSize !== 0 && (!inside(ext) || overlaps(ext, inodes) || overlaps(ext, blobs))) {
    throw bad('s_extended_blob_table_offset', `table of ${sb.s_extended_blob_table_entries} entries is outside the bootstrap or overlaps another table`);
  }

  const prefetchSize = sb.s_prefetch_table_entries * 4;
  const prefetch = range('s_prefetch_table_offset', sb.s_prefetch_table_offset, prefetchSize, false);
  if (prefetchSize !== 0 && (!inside(prefetch) || overlaps(prefetch, inodes) || overlaps(prefetch, blobs)
    || (extSize !== 0 && overlaps(prefetch, ext)))) {
    throw bad('s_prefetch_table_offset', `table of ${sb.s_prefetch_table_entries} entries is outside the bootstrap or overlaps another table`);
  }
}

// ---------------------------------------------------------------------------------------------
// Inode table: one u32 per child index (1-based), holding the inode's byte offset >> 3.

export interface RafsV5InodeTable {
  /** Raw entries: offset from the start of the bootstrap, divided by 8. */
  data: number[];
}

/** On-disk bytes of an inode table with `entries` slots (padded to 8). */
export const inodeTableSize = (entries: number) => align8(entries * 4);

/** `entries` little-endian u32s at off (the inode and prefetch tables). */
function decodeU32s(buf: Buffer, off: number, entries: number, structure: string): number[] {
  need(buf, off, entries * 4, structure);
  const out = new Array<number>(entries);
  for (let i = 0; i < entries; i++) out[i] = buf.readUInt32LE(off + i * 4);
  return out;
}

/** Little-endian u32s, padded to 8 bytes. */
function encodeU32s(values: number[]): Buffer {
  const b = Buffer.alloc(align8(values.length * 4));
  values.forEach((v, i) => b.writeUInt32LE(v, i * 4));
  return b;
}

export function decodeInodeTable(buf: Buffer, off: number, entries: number): RafsV5InodeTable {
  return { data: decodeU32s(buf, off, entries, 'inode_table') };
}

export function encodeInodeTable(table: RafsV5InodeTable): Buffer {
  return encodeU32s(table.data);
}

/** RafsV5InodeTable::get: the byte offset of child index `ino`, checked to lie past the superblock. */
export function inodeOffset(table: RafsV5InodeTable, ino: number): number {
  if (!Number.isInteger(ino) || ino < 1 || ino > table.data.length) {
    throw formatError('inode_table', 'index', ino, `outside 1..${table.data.length}`);
  }
  const v = table.data[ino - 1];
  if (v <= SUPERBLOCK_SIZE >> 3 || v >= 1 << 29) {
    throw formatError('inode_table', `data[${ino - 1}]`, hex(v), 'inode offset must lie after the superblock and below 4 GiB');
  }
  return v * 8;
}

// ---------------------------------------------------------------------------------------------
// Prefetch table: u32 inode numbers (not table indexes), padded to 8.

export interface RafsV5PrefetchTable {
  inodes: number[];
}

export const prefetchTableSize = (entries: number) => align8(entries * 4);

export function decodePrefetchTable(buf: Buffer, off: number, entries: number): RafsV5PrefetchTable {
  return { inodes: decodeU32s(buf, off, entries, 'prefetch_table') };
}

export function encodePrefetchTable(table: RafsV5PrefetchTable): Buffer {
  return encodeU32s(table.inodes);
}

// ---------------------------------------------------------------------------------------------
// Blob table: entries of u32 readahead_offset, u32 readahead_size, blob id bytes; entries are
// separated by one NUL (the last has none) and the whole table is zero-padded to 8.

export interface RafsV5BlobEntry {
  readahead_offset: number;
  readahead_size: number;
  blob_id: string;
}

export function blobTableSize(entries: RafsV5BlobEntry[]): number {
  if (entries.length === 0) return 0;
  const raw = entries.reduce((n, e) => n + 8 + Buffer.byteLength(e.blob_id) + 1, 0) - 1;
  return align8(raw);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeBlobTable(buf: Buffer, off: number, size: number): RafsV5BlobEntry[] {
  need(buf, off, size, 'blob_table');
  const table = buf.subarray(off, off + size);
  const entries: RafsV5BlobEntry[] = [];
  let p = 0;
  // Like upstream: anything of 8 bytes or less left over is padding.
  while (table.length - p > 8) {
    const readahead_offset = table.readUInt32LE(p);
    const readahead_size = table.readUInt32LE(p + 4);
    let end = table.indexOf(0, p + 8);
    if (end < 0) end = table.length;
    let blob_id: string;
    try {
      blob_id = utf8.decode(table.subarray(p + 8, end));
    } catch {
      throw formatError('blob_table', `[${entries.length}].blob_id`, table.subarray(p + 8, end).toString('hex'), 'not UTF-8');
    }
    if (blob_id.length === 0) throw formatError('blob_table', `[${entries.length}].blob_id`, '""', 'empty blob id');
    entries.push({ readahead_offset, readahead_size, blob_id });
    p = end + 1;
  }
  return entries;
}

export function encodeBlobTable(entries: RafsV5BlobEntry[]): Buffer {
  const b = Buffer.alloc(blobTableSize(entries));
  let p = 0;
  entries.forEach((e, i) => {
    if (e.blob_id.length === 0 || e.blob_id.includes('\0')) {
      throw formatError('blob_table', `[${i}].blob_id`, JSON.stringify(e.blob_id), 'must be non-empty without NUL');
    }
    b.writeUInt32LE(e.readahead_offset, p);
    b.writeUInt32LE(e.readahead_size, p + 4);
    p += 8 + b.write(e.blob_id, p + 8, 'utf8') + 1;
  });
  return b;
}

// ---------------------------------------------------------------------------------------------
// Extended blob table entry: 64 bytes per blob, same order as the blob table.

export const EXT_BLOB_ENTRY_SIZE = 64;

export interface RafsV5ExtBlobEntry {
  chunk_count: number;
  /** BlobFeatures bits. */
  features: number;
  uncompressed_size: number;
  compressed_size: number;
}

export function decodeExtBlobEntry(buf: Buffer, off: number): RafsV5ExtBlobEntry {
  need(buf, off, EXT_BLOB_ENTRY_SIZE, 'ext_blob_entry');
  return {
    chunk_count: buf.readUInt32LE(off),
    features: buf.readUInt32LE(off + 4),
    uncompressed_size: u64(buf, off + 8, 'ext_blob_entry', 'uncompressed_size'),
    compressed_size: u64(buf, off + 16, 'ext_blob_entry', 'compressed_size'),
  };
}

export function encodeExtBlobEntry(e: RafsV5ExtBlobEntry): Buffer {
  const b = Buffer.alloc(EXT_BLOB_ENTRY_SIZE);
  b.writeUInt32LE(e.chunk_count, 0);
  b.writeUInt32LE(e.features >>> 0, 4);
  putU64(b, 8, e.uncompressed_size);
  putU64(b, 16, e.compressed_size);
  return b;
}

export function decodeExtBlobTable(buf: Buffer, off: number, entries: number): RafsV5ExtBlobEntry[] {
  need(buf, off, entries * EXT_BLOB_ENTRY_SIZE, 'ext_blob_table');
  return Array.from({ length: entries }, (_, i) => decodeExtBlobEntry(buf, off + i * EXT_BLOB_ENTRY_SIZE));
}

export const encodeExtBlobTable = (entries: RafsV5ExtBlobEntry[]) => Buffer.concat(entries.map(encodeExtBlobEntry));

// ---------------------------------------------------------------------------------------------
// Inode: 128 bytes, followed by its name and (symlinks) target, each padded to 8.

export const INODE_SIZE = 128;

export interface RafsV5Inode {
  /** Regular file: digest over its chunk digests; directory: over its children's; symlink: of the target. */
  i_digest: Buffer;
  i_parent: number;
  /** Inode number; hardlinks share it, everything else has i_ino = its child index. */
  i_ino: number;
  i_uid: number;
  i_gid: number;
  i_projid: number;
  i_mode: number;
  i_size: number;
  i_blocks: number;
  /** RafsInodeFlags. */
  i_flags: number;
  i_nlink: number;
  /** Directory: child index of its first child. */
  i_child_index: number;
  /** Directory: number of children; regular file: number of chunk infos. */
  i_child_count: number;
  i_name_size: number;
  i_symlink_size: number;
  i_rdev: number;
  i_mtime_nsec: number;
  i_mtime: number;
}

export function decodeInode(buf: Buffer, off: number): RafsV5Inode {
  need(buf, off, INODE_SIZE, 'inode');
  const s = 'inode';
  return {
    i_digest: Buffer.from(buf.subarray(off, off + DIGEST_SIZE)),
    i_parent: u64(buf, off + 32, s, 'i_parent'),
    i_ino: u64(buf, off + 40, s, 'i_ino'),
    i_uid: buf.readUInt32LE(off + 48),
    i_gid: buf.readUInt32LE(off + 52),
    i_projid: buf.readUInt32LE(off + 56),
    i_mode: buf.readUInt32LE(off + 60),
    i_size: u64(buf, off + 64, s, 'i_size'),
    i_blocks: u64(buf, off + 72, s, 'i_blocks'),
    i_flags: u64(buf, off + 80, s, 'i_flags'),
    i_nlink: buf.readUInt32LE(off + 88),
    i_child_index: buf.readUInt32LE(off + 92),
    i_child_count: buf.readUInt32LE(off + 96),
    i_name_size: buf.readUInt16LE(off + 100),
    i_symlink_size: buf.readUInt16LE(off + 102),
    i_rdev: buf.readUInt32LE(off + 104),
    i_mtime_nsec: buf.readUInt32LE(off + 108),
    i_mtime: u64(buf, off + 112, s, 'i_mtime'),
  };
}

export function encodeInode(i: RafsV5Inode): Buffer {
  const b = Buffer.alloc(INODE_SIZE);
  digest(i.i_digest, 'inode', 'i_digest').copy(b, 0);
  putU64(b, 32, i.i_parent);
  putU64(b, 40, i.i_ino);
  b.writeUInt32LE(i.i_uid, 48);
  b.writeUInt32LE(i.i_gid, 52);
  b.writeUInt32LE(i.i_projid, 56);
  b.writeUInt32LE(i.i_mode, 60);
  putU64(b, 64, i.i_size);
  putU64(b, 72, i.i_blocks);
  putU64(b, 80, i.i_flags);
  b.writeUInt32LE(i.i_nlink, 88);
  b.writeUInt32LE(i.i_child_index, 92);
  b.writeUInt32LE(i.i_child_count, 96);
  b.writeUInt16LE(i.i_name_size, 100);
  b.writeUInt16LE(i.i_symlink_size, 102);
  b.writeUInt32LE(i.i_rdev, 104);
  b.writeUInt32LE(i.i_mtime_nsec, 108);
  putU64(b, 112, i.i_mtime);
  return b;
}

/** OndiskInodeWrapper::validate: the checks nydusd makes before trusting an inode. */
export function validateInode(i: RafsV5Inode, maxIno: number): void {
  const bad = (field: keyof RafsV5Inode, why: string) => formatError(`inode ${i.i_ino}`, field, i[field], why);
  if (i.i_ino === 0 || i.i_ino > maxIno) throw bad('i_ino', `outside 1..${maxIno}`);
  if (i.i_ino !== ROOT_INODE && i.i_parent === 0) throw bad('i_parent', 'only the root may have no parent');
  if (i.i_nlink === 0) throw bad('i_nlink', 'must be at least 1');
  if (i.i_name_size === 0 || i.i_name_size > MAX_NAME + 1) throw bad('i_name_size', `must be 1..${MAX_NAME + 1}`);
  if ((i.i_flags & ~KNOWN_INODE_FLAGS) !== 0 || i.i_flags > 0xffff_ffff) throw bad('i_flags', 'has bits RafsInodeFlags does not define');
  const hardlink = isReg(i.i_mode) && i.i_nlink > 1;
  if (!hardlink && i.i_parent >= i.i_ino) throw bad('i_parent', `must be below i_ino ${i.i_ino} unless a hardlink`);
  if (isDir(i.i_mode) && i.i_child_count > 0
    && (i.i_child_index <= i.i_ino || i.i_child_count >= maxIno || i.i_child_index + i.i_child_count - 1 > maxIno)) {
    throw bad('i_child_index', `children ${i.i_child_index}+${i.i_child_count} must follow the directory and lie within 1..${maxIno}`);
  }
  if (isSymlink(i.i_mode) && i.i_symlink_size === 0) throw bad('i_symlink_size', 'a symlink needs a target');
}

/** Bytes of the inode plus its padded name and symlink (upstream RafsV5Inode::size). */
export const inodeRecordSize = (i: Pick<RafsV5Inode, 'i_name_size' | 'i_symlink_size'>) =>
  INODE_SIZE + align8(i.i_name_size) + align8(i.i_symlink_size);

// ---------------------------------------------------------------------------------------------
// Name and symlink storage right after the inode: name bytes, zero pad to 8, target bytes, pad.

export interface RafsV5InodeNames {
  name: Buffer;
  /** Present only for symlinks (i_symlink_size > 0). */
  symlink?: Buffer;
}

export function decodeInodeNames(buf: Buffer, off: number, i: Pick<RafsV5Inode, 'i_name_size' | 'i_symlink_size'>): RafsV5InodeNames {
  const size = align8(i.i_name_size) + align8(i.i_symlink_size);
  need(buf, off, size, 'inode_names');
  const name = Buffer.from(buf.subarray(off, off + i.i_name_size));
  if (i.i_symlink_size === 0) return { name };
  const at = off + align8(i.i_name_size);
  return { name, symlink: Buffer.from(buf.subarray(at, at + i.i_symlink_size)) };
}

export function encodeInodeNames(n: RafsV5InodeNames): Buffer {
  if (n.name.length === 0 || n.name.length > MAX_NAME + 1) throw formatError('inode_names', 'name', n.name.toString(), `must be 1..${MAX_NAME + 1} bytes`);
  if (n.symlink !== undefined && (n.symlink.length === 0 || n.symlink.length > 0xffff)) {
    throw formatError('inode_names', 'symlink', n.symlink.length, 'target must be 1..65535 bytes');
  }
  const b = Buffer.alloc(align8(n.name.length) + align8(n.symlink?.length ?? 0));
  n.name.copy(b, 0);
  n.symlink?.copy(b, align8(n.name.length));
  return b;
}

// ---------------------------------------------------------------------------------------------
// Xattr area (present when i_flags has XATTR): u64 content size, then pairs of
// u32 pair_size + name + NUL + value; the whole area is zero-padded to 8.

export const XATTR_HEADER_SIZE = 8;
/** Upstream RafsXAttrs::add limits. */
export const XATTR_NAME_MAX = 255;
export const XATTR_VALUE_MAX = 0x10000;

export interface RafsV5XattrPair {
  name: Buffer;
  value: Buffer;
}

export interface RafsV5XAttrs {
  /** Content bytes after the u64 header, before padding. */
  size: number;
  pairs: RafsV5XattrPair[];
}

/** Bytes the area occupies on disk, header and padding included. */
export const xattrAreaSize = (x: Pick<RafsV5XAttrs, 'size'>) => align8(XATTR_HEADER_SIZE + x.size);

export function decodeXattrs(buf: Buffer, off: number): RafsV5XAttrs {
  need(buf, off, XATTR_HEADER_SIZE, 'xattrs');
  const size = u64(buf, off, 'xattrs', 'size');
  need(buf, off + XATTR_HEADER_SIZE, size, 'xattrs');
  const pairs: RafsV5XattrPair[] = [];
  let p = off + XATTR_HEADER_SIZE;
  const end = p + size;
  while (p < end) {
    if (end - p < 4) throw formatError('xattrs', `pairs[${pairs.length}].pair_size`, end - p, 'not enough bytes left for a pair size');
    const pairSize = buf.readUInt32LE(p);
    if (pairSize > end - p - 4) throw formatError('xattrs', `pairs[${pairs.length}].pair_size`, pairSize, `exceeds the ${end - p - 4} bytes left`);
    const pair = buf.subarray(p + 4, p + 4 + pairSize);
    const nul = pair.indexOf(0);
    if (nul <= 0) throw formatError('xattrs', `pairs[${pairs.length}].name`, pair.toString('latin1'), 'missing or empty NUL-terminated name');
    pairs.push({ name: Buffer.from(pair.subarray(0, nul)), value: Buffer.from(pair.subarray(nul + 1)) });
    p += 4 + pairSize;
  }
  return { size, pairs };
}

/** Encodes pairs in the order given; an empty list encodes to nothing (upstream writes no area). */
export function encodeXattrs(pairs: RafsV5XattrPair[]): Buffer {
  if (pairs.length === 0) return Buffer.alloc(0);
  pairs.forEach((x, i) => {
    if (x.name.length === 0 || x.name.length > XATTR_NAME_MAX || x.name.includes(0)) {
      throw formatError('xattrs', `pairs[${i}].name`, x.name.toString('latin1'), `must be 1..${XATTR_NAME_MAX} bytes without NUL`);
    }
    if (x.value.length > XATTR_VALUE_MAX) throw formatError('xattrs', `pairs[${i}].value`, `${x.value.length} bytes`, `longer than ${XATTR_VALUE_MAX}`);
  });
  const size = pairs.reduce((n, x) => n + 4 + x.name.length + 1 + x.value.length, 0);
  const b = Buffer.alloc(xattrAreaSize({ size }));
  putU64(b, 0, size);
  let p = XATTR_HEADER_SIZE;
  for (const x of pairs) {
    b.writeUInt32LE(x.name.length + 1 + x.value.length, p);
    x.name.copy(b, p + 4);
    x.value.copy(b, p + 5 + x.name.length);
    p += 4 + x.name.length + 1 + x.value.length;
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Chunk info: 80 bytes, i_child_count of them after a regular file's inode (and xattrs).

export const CHUNK_INFO_SIZE = chunkInfo.SIZE;

/** The v6 chunk-table entry's fields, with the digest under upstream's v5 name. */
export type RafsV5ChunkInfo = Omit<chunkInfo.ChunkInfoEntry, 'digest'> & {
  /** Digest of the uncompressed chunk. */
  block_id: Buffer;
};

// The same 80-byte layout as the v6 chunk table entry: one codec serves both.
export function decodeChunkInfo(buf: Buffer, off: number): RafsV5ChunkInfo {
  const { digest: block_id, ...rest } = chunkInfo.decode(buf, off);
  return { block_id, ...rest };
}

export function encodeChunkInfo(c: RafsV5ChunkInfo): Buffer {
  const b = Buffer.alloc(CHUNK_INFO_SIZE);
  const { block_id, ...rest } = c;
  chunkInfo.encode({ digest: digest(block_id, 'chunk_info', 'block_id'), ...rest }, b, 0);
  return b;
}

export function validateChunkInfo(c: RafsV5ChunkInfo, blobCount: number, chunkSize: number): void {
  const bad = (field: keyof RafsV5ChunkInfo, why: string) => formatError('chunk_info', field, c[field], why);
  if (c.blob_index >= blobCount) throw bad('blob_index', `the blob table has ${blobCount} blobs`);
  if ((c.flags & ~KNOWN_CHUNK_FLAGS) !== 0) throw bad('flags', 'has bits BlobChunkFlags does not define');
  if ((c.flags & (ChunkFlags.ENCRYPTED | ChunkFlags.BATCH)) !== 0) throw bad('flags', 'encrypted or batch chunks cannot appear in RAFS v5');
  if (c.uncompressed_size === 0 || c.uncompressed_size > chunkSize) throw bad('uncompressed_size', `must be 1..${chunkSize}`);
  // Upstream stores a chunk raw (flag clear) only when compression did not shrink it.
  if ((c.flags & ChunkFlags.COMPRESSED) === 0 && c.compressed_size !== c.uncompressed_size) {
    throw bad('compressed_size', `differs from uncompressed_size ${c.uncompressed_size} but the chunk is not flagged COMPRESSED`);
  }
}
