import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UPSTREAM } from '../../helpers/upstream.js';
import { NydusError } from '../../../src/errors.js';
import * as v5 from '../../../src/format/rafs/v5.js';

const FIXTURES = resolve(UPSTREAM, 'repeatable');
const BOOT = readFileSync(resolve(FIXTURES, 'sha256-nocompress-repeatable'));

const digestOf = (seed: number) => Buffer.alloc(32, seed);

const superBlock: v5.RafsV5SuperBlock = {
  ...v5.newSuperBlock(),
  s_flags: v5.SuperFlags.COMPRESSION_LZ4 | v5.SuperFlags.HASH_BLAKE3 | v5.SuperFlags.EXPLICIT_UID_GID,
  s_inodes_count: 3, s_inode_table_offset: 8192, s_inode_table_entries: 3,
  s_prefetch_table_offset: 8208, s_prefetch_table_entries: 1,
  s_blob_table_offset: 8216, s_blob_table_size: 80,
  s_extended_blob_table_offset: 8296, s_extended_blob_table_entries: 1,
};
const inode: v5.RafsV5Inode = {
  i_digest: digestOf(7), i_parent: 1, i_ino: 2, i_uid: 1000, i_gid: 100, i_projid: 0, i_mode: 0o100644,
  i_size: 2 ** 40 + 5, i_blocks: 9, i_flags: v5.InodeFlags.XATTR, i_nlink: 1, i_child_index: 0,
  i_child_count: 2, i_name_size: 5, i_symlink_size: 0, i_rdev: 0, i_mtime_nsec: 999_999_999, i_mtime: 1_668_232_305,
};
const chunk: v5.RafsV5ChunkInfo = {
  block_id: digestOf(0xab), blob_index: 0, flags: v5.ChunkFlags.COMPRESSED | v5.ChunkFlags.HAS_CRC32,
  compressed_size: 100, uncompressed_size: 4096, compressed_offset: 2 ** 33, uncompressed_offset: 2 ** 34,
  file_offset: 1 << 20, index: 7, crc32: 0xdeadbeef,
};
const extEntry: v5.RafsV5ExtBlobEntry = { chunk_count: 23, features: 0x4000_0000, uncompressed_size: 3508766, compressed_size: 994935 };
const blobs: v5.RafsV5BlobEntry[] = [
  { readahead_offset: 0, readahead_size: 4096, blob_id: 'a'.repeat(64) },
  { readahead_offset: 8, readahead_size: 0, blob_id: 'b'.repeat(3) },
];

/** Runs fn and returns the NydusError it throws. */
function errorOf(fn: () => unknown): NydusError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    return e as NydusError;
  }
  throw new Error('expected a NydusError');
}
/** One line, FORMAT code, naming `structure.field`. */
function expectFieldError(fn: () => unknown, structureField: string): void {
  const e = errorOf(fn);
  expect(e.code).toBe('FORMAT');
  expect(e.message).not.toContain('\n');
  expect(e.message.startsWith(`${structureField} = `)).toBe(true);
}

describe('fixed-size structures', () => {
  it('encode to exactly their SIZE and decode back', () => {
    const cases: [Buffer, number, () => unknown, unknown][] = [
      [v5.encodeSuperBlock(superBlock), v5.SUPERBLOCK_SIZE, () => v5.decodeSuperBlock(v5.encodeSuperBlock(superBlock), 0), superBlock],
      [v5.encodeInode(inode), v5.INODE_SIZE, () => v5.decodeInode(v5.encodeInode(inode), 0), inode],
      [v5.encodeChunkInfo(chunk), v5.CHUNK_INFO_SIZE, () => v5.decodeChunkInfo(v5.encodeChunkInfo(chunk), 0), chunk],
      [v5.encodeExtBlobEntry(extEntry), v5.EXT_BLOB_ENTRY_SIZE, () => v5.decodeExtBlobEntry(v5.encodeExtBlobEntry(extEntry), 0), extEntry],
    ];
    expect(cases.map(([b]) => b.length)).toEqual([8192, 128, 80, 64]);
    for (const [bytes, size, roundTrip, original] of cases) {
      expect(bytes.length).toBe(size);
      expect(roundTrip()).toEqual(original);
    }
  });

  it('decode at a non-zero offset', () => {
    const b = Buffer.concat([Buffer.alloc(24, 0xff), v5.encodeChunkInfo(chunk)]);
    expect(v5.decodeChunkInfo(b, 24)).toEqual(chunk);
  });

  it('puts fields where upstream does', () => {
    const sb = v5.encodeSuperBlock(superBlock);
    expect(sb.subarray(0, 4).toString('latin1')).toBe('SFAR');
    expect(sb.readUInt32LE(12)).toBe(v5.DEFAULT_CHUNK_SIZE);
    expect(sb.readBigUInt64LE(72)).toBe(8296n);
    const c = v5.encodeChunkInfo(chunk);
    expect(c.readUInt32LE(36)).toBe(0x11);
    expect(c.readBigUInt64LE(48)).toBe(2n ** 33n);
    expect(c.readUInt32LE(76)).toBe(0xdeadbeef);
    const i = v5.encodeInode(inode);
    expect(i.readUInt16LE(100)).toBe(5);
    expect(i.readBigUInt64LE(112)).toBe(1_668_232_305n);
  });
});

describe('variable-size structures', () => {
  it('blob table: NUL-separated, padded to 8, round-trips', () => {
    const b = v5.encodeBlobTable(blobs);
    expect(b.length).toBe(v5.blobTableSize(blobs));
    expect(b.length).toBe(88); // 8+64 + NUL + 8+3 = 84 → 88
    expect(b[72]).toBe(0);
    expect(v5.decodeBlobTable(b, 0, b.length)).toEqual(blobs);
    expect(v5.encodeBlobTable([])).toHaveLength(0);
  });

  it('extended blob table round-trips', () => {
    const b = v5.encodeExtBlobTable([extEntry, { ...extEntry, chunk_count: 1 }]);
    expect(b.length).toBe(2 * v5.EXT_BLOB_ENTRY_SIZE);
    expect(v5.decodeExtBlobTable(b, 0, 2)).toEqual([extEntry, { ...extEntry, chunk_count: 1 }]);
  });

  it('inode and prefetch tables: u32 each, padded to 8', () => {
    const table = { data: [1025, 1041, 1060] };
    const b = v5.encodeInodeTable(table);
    expect(b.length).toBe(16);
    expect(v5.decodeInodeTable(b, 0, 3)).toEqual(table);
    expect(v5.inodeOffset(table, 2)).toBe(1041 * 8);
    const prefetch = { inodes: [5, 9] };
    expect(v5.encodePrefetchTable(prefetch)).toHaveLength(8);
    expect(v5.decodePrefetchTable(v5.encodePrefetchTable(prefetch), 0, 2)).toEqual(prefetch);
  });

  it('names: name then symlink, each padded to 8', () => {
    const names = { name: Buffer.from('root-1'), symlink: Buffer.from('/'.repeat(17)) };
    const b = v5.encodeInodeNames(names);
    const sizes = { i_name_size: 6, i_symlink_size: 17 };
    expect(b.length).toBe(8 + 24);
    expect(b.length).toBe(v5.inodeRecordSize(sizes) - v5.INODE_SIZE);
    expect(v5.decodeInodeNames(b, 0, sizes)).toEqual(names);
    expect(v5.decodeInodeNames(v5.encodeInodeNames({ name: Buffer.from('x') }), 0, { i_name_size: 1, i_symlink_size: 0 }))
      .toEqual({ name: Buffer.from('x') });
  });

  it('xattrs: u64 size, u32-sized pairs, padded to 8', () => {
    const pairs = [
      { name: Buffer.from('user.a'), value: Buffer.from('1') },
      { name: Buffer.from('security.capability'), value: Buffer.alloc(20, 1) },
      { name: Buffer.from('user.empty'), value: Buffer.alloc(0) },
    ];
    const b = v5.encodeXattrs(pairs);
    const size = 3 * 4 + (6 + 1 + 1) + (19 + 1 + 20) + (10 + 1);
    expect(b.readBigUInt64LE(0)).toBe(BigInt(size));
    expect(b.length).toBe(v5.xattrAreaSize({ size }));
    expect(b.length % 8).toBe(0);
    expect(v5.decodeXattrs(b, 0)).toEqual({ size, pairs });
    expect(v5.encodeXattrs([])).toHaveLength(0);
  });
});

describe('the upstream fixture', () => {
  const sb = v5.decodeSuperBlock(BOOT, 0);

  it('validates and re-encodes its superblock byte for byte', () => {
    v5.validateSuperBlock(sb, BOOT.length);
    expect(v5.encodeSuperBlock(sb).equals(BOOT.subarray(0, v5.SUPERBLOCK_SIZE))).toBe(true);
  });

  it('re-encodes every table and inode record byte for byte', () => {
    const { s_inode_table_offset: ito, s_inode_table_entries: n } = sb;
    const table = v5.decodeInodeTable(BOOT, ito, n);
    expect(v5.encodeInodeTable(table).equals(BOOT.subarray(ito, ito + v5.inodeTableSize(n)))).toBe(true);
    const bto = sb.s_blob_table_offset;
    const blobTable = v5.decodeBlobTable(BOOT, bto, sb.s_blob_table_size);
    expect(v5.encodeBlobTable(blobTable).equals(BOOT.subarray(bto, bto + sb.s_blob_table_size))).toBe(true);
    const eto = sb.s_extended_blob_table_offset;
    const ext = v5.decodeExtBlobTable(BOOT, eto, sb.s_extended_blob_table_entries);
    expect(v5.encodeExtBlobTable(ext).equals(BOOT.subarray(eto, eto + v5.EXT_BLOB_ENTRY_SIZE))).toBe(true);

    // Records sit back to back in the order of their offsets; re-encode each piece in place.
    const offsets = [...new Set(table.data.map((_, i) => v5.inodeOffset(table, i + 1)))].sort((a, b) => a - b);
    let expected = offsets[0];
    let chunks = 0;
    for (const off of offsets) {
      expect(off).toBe(expected);
      const inode = v5.decodeInode(BOOT, off);
      v5.validateInode(inode, n);
      const names = v5.decodeInodeNames(BOOT, off + v5.INODE_SIZE, inode);
      const pieces = [v5.encodeInode(inode), v5.encodeInodeNames(names)];
      if (inode.i_flags & v5.InodeFlags.XATTR) pieces.push(v5.encodeXattrs(v5.decodeXattrs(BOOT, off + v5.inodeRecordSize(inode)).pairs));
      if ((inode.i_mode & 0o170000) === 0o100000) {
        const at = off + pieces.reduce((s, p) => s + p.length, 0);
        for (let k = 0; k < inode.i_child_count; k++) {
          const c = v5.decodeChunkInfo(BOOT, at + k * v5.CHUNK_INFO_SIZE);
          v5.validateChunkInfo(c, blobTable.length, sb.s_block_size);
          pieces.push(v5.encodeChunkInfo(c));
          chunks++;
        }
      }
      const record = Buffer.concat(pieces);
      expect(record.equals(BOOT.subarray(off, off + record.length))).toBe(true);
      expected = off + record.length;
    }
    expect(expected).toBe(BOOT.length);
    expect(chunks).toBeGreaterThan(ext[0].chunk_count);
  });
});

describe('validation names the field and the bad value', () => {
  const sb = v5.decodeSuperBlock(BOOT, 0);
  const check = (patch: Partial<v5.RafsV5SuperBlock>, field: string) =>
    expectFieldError(() => v5.validateSuperBlock({ ...sb, ...patch }, BOOT.length), field);

  it('superblock', () => {
    check({ s_magic: 0x12345678 }, 'superblock.s_magic');
    expect(errorOf(() => v5.validateSuperBlock({ ...sb, s_magic: 0x12345678 }, BOOT.length)).message).toContain('0x12345678');
    check({ s_fs_version: 0x600 }, 'superblock.s_fs_version');
    check({ s_sb_size: 4096 }, 'superblock.s_sb_size');
    check({ s_block_size: 0x3000 }, 'superblock.s_block_size');
    check({ s_block_size: 0x800 }, 'superblock.s_block_size');
    check({ s_flags: sb.s_flags | 0x400 }, 'superblock.s_flags');
    check({ s_flags: 2 ** 40 }, 'superblock.s_flags');
    check({ s_inodes_count: 55 }, 'superblock.s_inodes_count');
    check({ s_inode_table_offset: 8196 }, 'superblock.s_inode_table_offset');
    check({ s_inode_table_entries: 5000 }, 'superblock.s_inode_table_offset');
    check({ s_blob_table_offset: 8192 }, 'superblock.s_blob_table_offset');
    check({ s_extended_blob_table_offset: 8408 }, 'superblock.s_extended_blob_table_offset');
    check({ s_prefetch_table_entries: 2, s_prefetch_table_offset: 8400 }, 'superblock.s_prefetch_table_offset');
    expectFieldError(() => v5.validateSuperBlock(sb, 8192), 'superblock.bootstrap size');
    expectFieldError(() => v5.decodeSuperBlock(BOOT.subarray(0, 100), 0), 'superblock.offset');
  });

  it('inode', () => {
    const n = 54;
    const bad = (patch: Partial<v5.RafsV5Inode>, field: string) =>
      expectFieldError(() => v5.validateInode({ ...inode, i_flags: 0, ...patch }, n), `inode ${patch.i_ino ?? inode.i_ino}.${field}`);
    v5.validateInode({ ...inode, i_flags: 0 }, n);
    bad({ i_ino: 0 }, 'i_ino');
    bad({ i_ino: 99 }, 'i_ino');
    bad({ i_nlink: 0 }, 'i_nlink');
    bad({ i_name_size: 0 }, 'i_name_size');
    bad({ i_name_size: 300 }, 'i_name_size');
    bad({ i_flags: 0x10 }, 'i_flags');
    bad({ i_parent: 0 }, 'i_parent');
    bad({ i_parent: 3 }, 'i_parent');
    bad({ i_mode: 0o040755, i_child_index: 2, i_child_count: 1 }, 'i_child_index');
    bad({ i_mode: 0o120777, i_symlink_size: 0 }, 'i_symlink_size');
    // A hardlink may have a parent numbered after it.
    v5.validateInode({ ...inode, i_flags: 0, i_nlink: 2, i_parent: 3 }, n);
    expectFieldError(() => v5.inodeOffset({ data: [1] }, 1), 'inode_table.data[0]');
    expectFieldError(() => v5.inodeOffset({ data: [2000] }, 2), 'inode_table.index');
  });

  it('chunk info', () => {
    const bad = (patch: Partial<v5.RafsV5ChunkInfo>, field: string) =>
      expectFieldError(() => v5.validateChunkInfo({ ...chunk, ...patch }, 1, 0x10_0000), `chunk_info.${field}`);
    v5.validateChunkInfo(chunk, 1, 0x10_0000);
    bad({ blob_index: 1 }, 'blob_index');
    bad({ flags: 0x40 }, 'flags');
    bad({ flags: v5.ChunkFlags.ENCRYPTED }, 'flags');
    bad({ uncompressed_size: 0 }, 'uncompressed_size');
    bad({ uncompressed_size: 0x10_0001 }, 'uncompressed_size');
    bad({ flags: 0 }, 'compressed_size');
    expectFieldError(() => v5.encodeChunkInfo({ ...chunk, block_id: Buffer.alloc(31) }), 'chunk_info.block_id');
  });

  it('blob table, xattrs and names', () => {
    const table = v5.encodeBlobTable(blobs);
    table[9] = 0xff;
    expectFieldError(() => v5.decodeBlobTable(table, 0, table.length), 'blob_table.[0].blob_id');
    expectFieldError(() => v5.encodeBlobTable([{ readahead_offset: 0, readahead_size: 0, blob_id: '' }]), 'blob_table.[0].blob_id');

    const area = v5.encodeXattrs([{ name: Buffer.from('user.a'), value: Buffer.from('b') }]);
    area.writeUInt32LE(100, 8);
    expectFieldError(() => v5.decodeXattrs(area, 0), 'xattrs.pairs[0].pair_size');
    const noNul = Buffer.alloc(16);
    noNul.writeBigUInt64LE(7n, 0);
    noNul.writeUInt32LE(3, 8);
    noNul.write('abc', 12);
    expectFieldError(() => v5.decodeXattrs(noNul, 0), 'xattrs.pairs[0].name');
    expectFieldError(() => v5.encodeXattrs([{ name: Buffer.alloc(256, 0x61), value: Buffer.alloc(0) }]), 'xattrs.pairs[0].name');
    expectFieldError(() => v5.encodeInodeNames({ name: Buffer.alloc(0) }), 'inode_names.name');
  });
});
