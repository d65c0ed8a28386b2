// Every on-disk structure: exactly its size, decode(encode(x)) = x, and bad input named by field.
import { describe, expect, it } from 'vitest';
import * as sb from '../../src/format/erofs/superblock.js';
import * as ino from '../../src/format/erofs/inode.js';
import * as dirent from '../../src/format/erofs/dirent.js';
import * as xattr from '../../src/format/erofs/xattr.js';
import * as cidx from '../../src/format/erofs/chunk-index.js';
import * as device from '../../src/format/erofs/device.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import * as ci from '../../src/format/rafs/chunk-info.js';
import * as meta from '../../src/format/blob/meta-header.js';
import * as bci from '../../src/format/blob/chunk-info.js';
import * as toc from '../../src/format/blob/toc.js';
import * as tar from '../../src/format/blob/tar-header.js';
import { decodeNumber } from '../../src/format/tar/header.js';
import { prng } from '../helpers/tree.js';

const superblock: sb.Superblock = {
  magic: sb.MAGIC, checksum: 0, feature_compat: sb.FEATURE_COMPAT_RAFS_V6, blkszbits: 12, sb_extslots: 0, root_nid: 128,
  inos: 3, build_time: 0, build_time_nsec: 0, blocks: 9, meta_blkaddr: 2, xattr_blkaddr: 0, uuid: Buffer.alloc(16),
  volume_name: '', feature_incompat: sb.RAFS_INCOMPAT, u1: 0, extra_devices: 1, devt_slotoff: sb.DEVT_SLOTOFF,
};

describe('EROFS superblock', () => {
  it('is 128 bytes and round-trips', () => {
    const b = sb.encode(superblock);
    expect(b.length).toBe(sb.SIZE);
    const whole = Buffer.concat([Buffer.alloc(1024), b]);
    expect(sb.decode(whole)).toEqual(superblock);
    expect(() => sb.validate(sb.decode(whole))).not.toThrow();
  });
  it('names the field RAFS rejects', () => {
    expect(() => sb.validate({ ...superblock, feature_incompat: 0xd })).toThrow(/superblock\.feature_incompat = 13: RAFS requires exactly 0xc/);
    expect(() => sb.validate({ ...superblock, magic: 1 })).toThrow(/superblock\.magic/);
    expect(() => sb.validate({ ...superblock, devt_slotoff: 9 })).toThrow(/devt_slotoff/);
    expect(() => sb.validate({ ...superblock, checksum: 5 })).toThrow(/checksum/);
  });
});

describe('inodes', () => {
  const inode: ino.Inode = {
    extended: true, layout: ino.LAYOUT_CHUNK_BASED, i_xattr_icount: 3, i_mode: 0o100644, i_size: 5 * 2 ** 32 + 7, i_u: 0x28,
    i_ino: 2, i_uid: 4294967294, i_gid: 65536, i_mtime: 2 ** 32 + 5, i_mtime_nsec: 999999999, i_nlink: 3,
  };
  it('extended is 64 bytes and round-trips, sizes over 4 GiB included', () => {
    const b = ino.encodeExtended(inode);
    expect(b.length).toBe(ino.EXTENDED_SIZE);
    expect(b.readUInt16LE(0)).toBe(0x09);
    expect(ino.decode(b, 0)).toEqual(inode);
  });
  it('decodes a compact inode with the superblock epoch as its time', () => {
    const b = Buffer.alloc(32);
    b.writeUInt16LE(0x04, 0);
    b.writeUInt16LE(0o40755, 4);
    b.writeUInt16LE(2, 6);
    b.writeUInt32LE(27, 8);
    const d = ino.decode(b, 0, 1234);
    expect(d).toMatchObject({ extended: false, layout: ino.LAYOUT_FLAT_INLINE, i_mode: 0o40755, i_nlink: 2, i_size: 27, i_mtime: 1234 });
  });
  it('rejects an unknown data layout', () => {
    const b = ino.encodeExtended(inode);
    b.writeUInt16LE(1 | (3 << 1), 0);
    expect(() => ino.decode(b, 0)).toThrow(/inode\.i_format/);
  });
  it('encodes rdev as Linux new_encode_dev, high minors included', () => {
    expect(ino.encodeDev(1, 3)).toBe(0x103);
    expect(ino.decodeDev(ino.encodeDev(259, 300000))).toEqual({ major: 259, minor: 300000 });
  });
});

describe('directory blocks', () => {
  it('sorts byte-wise with . and .. among the names and packs 12-byte dirents then names', () => {
    const names = ['b', '..', '.', '!a', 'a'].map((n) => Buffer.from(n)).sort(Buffer.compare);
    expect(names.map(String)).toEqual(['!a', '.', '..', 'a', 'b']);
    const entries = names.map((name, i) => ({ nid: 100 + i, name, file_type: dirent.FT_REG_FILE }));
    const block = dirent.encodeBlock(entries);
    expect(block.length).toBe(5 * dirent.SIZE + 2 + 1 + 2 + 1 + 1);
    expect(block.readUInt16LE(8)).toBe(60);
    expect(dirent.decodeBlock(block, 0, block.length, 4096)).toEqual(entries);
  });
  it('splits entries across blocks and sizes the directory by the last block', () => {
    const entries = Array.from({ length: 400 }, (_, i) => ({ nid: i, name: Buffer.from(`name-${String(i).padStart(4, '0')}`), file_type: 1 }));
    const blocks = dirent.packBlocks(entries, 4096);
    expect(blocks.length).toBeGreaterThan(1);
    for (const b of blocks) expect(dirent.blockUsed(b)).toBeLessThanOrEqual(4096);
    expect(dirent.dirSize(blocks, 4096)).toBe((blocks.length - 1) * 4096 + dirent.blockUsed(blocks[blocks.length - 1]));
  });
  it('rejects a bad first name offset', () => {
    const block = dirent.encodeBlock([{ nid: 1, name: Buffer.from('x'), file_type: 1 }]);
    block.writeUInt16LE(5, 8);
    expect(() => dirent.decodeBlock(block, 0, block.length, 4096)).toThrow(/dirent\.nameoff = 5/);
  });
});

describe('xattrs', () => {
  it('matches the spec example: 40 bytes, icount 8', () => {
    const x = [
      { name: Buffer.from('security.s'), value: Buffer.from('xyz') },
      { name: Buffer.from('trusted.t'), value: Buffer.from('1') },
      { name: Buffer.from('user.foo'), value: Buffer.from('bar') },
    ];
    const b = xattr.encode(x);
    expect(b.length).toBe(40);
    expect(xattr.icount(b.length)).toBe(8);
    expect(xattr.sizeOfIcount(8)).toBe(40);
    expect(xattr.decode(b, 0, 8)).toEqual(x);
  });
  it('refuses a namespace RAFS cannot store', () => {
    expect(() => xattr.encode([{ name: Buffer.from('system.foo'), value: Buffer.alloc(0) }])).toThrow(/xattr\.name = system\.foo/);
  });
});

describe('chunk index and format word', () => {
  it('splits the ci index around the device id byte', () => {
    const out = Buffer.alloc(8);
    cidx.encode({ ci_index: 0x123456, device_id: 1, blkaddr: 5 }, out, 0);
    expect(out.toString('hex')).toBe('5634011205000000');
    expect(cidx.decode(out, 0)).toEqual({ ci_index: 0x123456, device_id: 1, blkaddr: 5 });
  });
  it('writes 0x28 for 1 MiB chunks on 4 KiB blocks', () => {
    expect(cidx.formatWord(0x100000, 12)).toBe(0x28);
    expect(cidx.parseFormatWord(0x28, 12)).toBe(0x100000);
    expect(() => cidx.encode({ ci_index: 0, device_id: 0, blkaddr: 0 }, Buffer.alloc(8), 0)).toThrow(/device_id/);
  });
  it('encodeInto writes encode\'s bytes from the fields, and refuses what encode refuses', () => {
    const viewOf = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (const c of [{ ci_index: 0x123456, device_id: 1, blkaddr: 5 }, { ci_index: 0xffffff, device_id: 254, blkaddr: 0xffffffff }, { ci_index: 7, device_id: 3, blkaddr: 2 ** 32 + 9 }]) {
      const a = Buffer.alloc(16);
      const b = Buffer.alloc(16);
      cidx.encode(c, a, 8);
      cidx.encodeInto(b, viewOf(b), 8, c.ci_index, c.device_id, c.blkaddr);
      expect(b).toEqual(a);
    }
    const out = Buffer.alloc(8);
    expect(() => cidx.encodeInto(out, viewOf(out), 0, 0, 0, 0)).toThrow(/device_id/);
    expect(() => cidx.encodeInto(out, viewOf(out), 0, 0x1000000, 1, 0)).toThrow(/ci_index/);
  });
});

describe('RAFS structures', () => {
  it('device slot is 128 bytes', () => {
    const d = { blob_id: 'ab'.repeat(32), blocks: 9, mapped_blkaddr: 512 };
    const b = device.encode(d);
    expect(b.length).toBe(device.SIZE);
    expect(device.decode(b, 0)).toEqual(d);
  });
  it('extended superblock is 256 bytes and rejects unknown flags', () => {
    const e = { flags: 0x194, blob_table_offset: 4096, blob_table_size: 256, chunk_size: 0x100000, chunk_table_offset: 0x4000, chunk_table_size: 160, prefetch_table_offset: 0, prefetch_table_size: 0 };
    const b = ext.encode(e);
    expect(b.length).toBe(ext.SIZE);
    expect(ext.decode(b, 0)).toEqual(e);
    expect(() => ext.validate({ ...e, flags: 0x8000 }, 0x5000)).toThrow(/ext_superblock\.flags/);
    expect(() => ext.validate({ ...e, chunk_size: 0x3000 }, 0x5000)).toThrow(/chunk_size/);
  });
  it('blob table entry is 256 bytes', () => {
    const e: bt.BlobEntry = {
      blob_id: 'be'.repeat(32), blob_index: 0, chunk_size: 0x100000, chunk_count: 2, compression_algo: 3, digest_algo: 0,
      features: 0x70000021, compressed_size: 14554, uncompressed_size: 36864, blob_toc_size: 1024, ci_compressor: 0,
      ci_offset: 8314, ci_compressed_size: 32, ci_uncompressed_size: 32, blob_toc_digest: Buffer.alloc(32, 7),
      blob_meta_digest: Buffer.alloc(32), blob_meta_size: 0, cipher_iv: Buffer.alloc(16), cipher_algo: 0,
    };
    const b = bt.encode(e);
    expect(b.length).toBe(bt.SIZE);
    expect(bt.decode(b, 0)).toEqual(e);
    expect(() => bt.validate({ ...e, features: 0x70000020 }, 0, 0x100000)).toThrow(/ALIGNED/);
  });
  it('an encrypted blob entry keeps its key in blob_meta_digest and its 16-byte IV over blob_meta_size and cipher_iv', () => {
    const iv = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const e: bt.BlobEntry = {
      blob_id: 'ab'.repeat(32), blob_index: 0, chunk_size: 0x100000, chunk_count: 2, compression_algo: 3, digest_algo: 0,
      features: 0x40000105, compressed_size: 100, uncompressed_size: 8192, blob_toc_size: 0, ci_compressor: 0,
      ci_offset: 50, ci_compressed_size: 48, ci_uncompressed_size: 48, blob_toc_digest: Buffer.alloc(32),
      blob_meta_digest: Buffer.alloc(32, 9), blob_meta_size: 0, cipher_iv: iv, cipher_algo: 1,
    };
    const b = bt.encode(e);
    // rafs-v6.md §6: IV bytes 0-7 at 200 (blob_meta_size's place), 8-15 at 208; algo at 216.
    expect(b.subarray(200, 216)).toEqual(iv);
    expect(b.readUInt32LE(216)).toBe(1);
    expect(bt.decode(b, 0)).toEqual(e);
    expect(() => bt.validate({ ...e, cipher_algo: 0 }, 0, 0x100000)).toThrow(/ENCRYPTED but names no cipher/);
    expect(() => bt.validate({ ...e, cipher_algo: 9 }, 0, 0x100000)).toThrow(/unknown cipher algorithm/);
  });
  it('chunk info is 80 bytes', () => {
    const c: ci.ChunkInfoEntry = { digest: Buffer.alloc(32, 1), blob_index: 0, flags: 1, compressed_size: 2974, uncompressed_size: 13400, compressed_offset: 4828, uncompressed_offset: 20480, file_offset: 0, index: 1, crc32: 0 };
    const b = Buffer.alloc(ci.SIZE);
    ci.encode(c, b, 0);
    expect(ci.decode(b, 0)).toEqual(c);
  });
  it('chunk info encodeInto writes encode\'s bytes from the fields, and refuses what encode refuses', () => {
    const viewOf = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    // The digest as emit packs it: its first 32 bytes (a shorter one zero-padded), here at offset 8 of the array.
    const into = (out: Buffer, off: number, c: ci.ChunkInfoEntry) => {
      const packed = new Uint8Array(48).fill(0xee);
      packed.fill(0, 8, 40);
      packed.set(c.digest.subarray(0, 32), 8);
      ci.encodeInto(out, viewOf(out), off, packed, 8, c.blob_index, c.flags, c.compressed_size, c.uncompressed_size, c.compressed_offset, c.uncompressed_offset, c.file_offset, c.index, c.crc32);
    };
    const base: ci.ChunkInfoEntry = { digest: Buffer.alloc(32, 7), blob_index: 3, flags: 0x11, compressed_size: 2974, uncompressed_size: 13400, compressed_offset: 2 ** 40 + 4828, uncompressed_offset: 20480, file_offset: 2 ** 33, index: 0xffffffff, crc32: -1 };
    // A digest longer than 32 bytes keeps its first 32; a shorter one (tarfs) is zero-padded.
    for (const c of [base, { ...base, digest: Buffer.alloc(40, 5) }, { ...base, digest: Buffer.alloc(0) }]) {
      const a = Buffer.alloc(ci.SIZE + 8);
      const b = Buffer.alloc(ci.SIZE + 8);
      ci.encode(c, a, 8);
      into(b, 8, c);
      expect(b).toEqual(a);
    }
    const out = Buffer.alloc(ci.SIZE);
    expect(() => into(out, 0, { ...base, compressed_size: 2 ** 32 })).toThrow(RangeError);
    expect(() => into(out, 0, { ...base, file_offset: -1 })).toThrow(RangeError);
  });
});

describe('blob structures', () => {
  it('blob.meta header is 4096 bytes with both magics', () => {
    const h = { s_features: 0x70000021, s_ci_compressor: 0, s_ci_entries: 2, s_ci_offset: 8314, s_ci_compressed_size: 32, s_ci_uncompressed_size: 32, s_ci_zran_offset: 0, s_ci_zran_size: 0, s_ci_zran_count: 0 };
    const b = meta.encode(h);
    expect(b.length).toBe(meta.SIZE);
    expect(meta.decode(b)).toEqual(h);
    b.writeUInt32LE(0, 4092);
    expect(() => meta.decode(b)).toThrow(/s_magic2/);
  });
  it('chunk info v1 matches the fixture decoding (c 4828/2974, u 20480/13400)', () => {
    const b = Buffer.alloc(16);
    const c = { compressed_offset: 4828, compressed_size: 2974, uncompressed_offset: 20480, uncompressed_size: 13400, flags: bci.V2_FLAG_COMPRESSED, data: 0n };
    bci.encodeV1(c, b, 0);
    expect(bci.decodeV1(b, 0)).toEqual(c);
    const big = { compressed_offset: 2 ** 39, compressed_size: 0x1000000, uncompressed_offset: 2 ** 43, uncompressed_size: 0x1000000, flags: 0, data: 0n };
    bci.encodeV1(big, b, 0);
    expect(bci.decodeV1(b, 0)).toEqual(big);
  });
  it('chunk info v2 round-trips with flags and data', () => {
    const b = Buffer.alloc(24);
    const c = { compressed_offset: 123, compressed_size: 0xffffff, uncompressed_offset: 4096 * 77, uncompressed_size: 0x1000000, flags: 0x11, data: 0xdeadbeefn };
    bci.encodeV2(c, b, 0);
    expect(bci.decodeV2(b, 0)).toEqual(c);
  });
  it('TOC entry is 128 bytes; blob.meta.header fills its name field with no NUL', () => {
    const e = { flags: 1, name: 'blob.meta.header', uncompressed_digest: Buffer.alloc(32, 9), compressed_offset: 1, compressed_size: 4096, uncompressed_size: 4096 };
    const b = toc.encode(e);
    expect(b.length).toBe(toc.SIZE);
    expect(toc.decode(b, 0)).toEqual(e);
    b.writeUInt32LE(3, 0);
    expect(() => toc.decode(b, 0)).toThrow(/toc_entry\.flags/);
  });
  it('tar header: GNU magic, NUL mode, 7-digit checksum, base-256 from 8 GiB', () => {
    const h = tar.encode('blob.meta', 4128);
    expect(h.length).toBe(512);
    expect(h.toString('latin1', 257, 265)).toBe('ustar  \0');
    expect(h.subarray(100, 124).every((x) => x === 0)).toBe(true);
    expect(h.toString('latin1', 148, 156)).toMatch(/^[0-7]{7}\0$/);
    expect(tar.decode(h, 0)).toEqual({ name: 'blob.meta', size: 4128 });
    expect(tar.decode(tar.encode('image.blob', 9 * 2 ** 30), 0).size).toBe(9 * 2 ** 30);
    h[0] ^= 1;
    expect(() => tar.decode(h, 0)).toThrow(/tar_header\.chksum/);
  });
  it('tar numeric fields: the byte-level fast path agrees with the text rule on any mix of digits, spaces, NULs and junk', () => {
    // The rule: up to the first NUL, trimmed as JS trims latin1 text (tab, LF, VT, FF, CR,
    // space, NBSP); blank is 0; otherwise octal digits only, or the field is an error.
    const rule = (f: Buffer): number | 'error' => {
      const nul = f.indexOf(0);
      const text = f.toString('latin1', 0, nul < 0 ? f.length : nul).trim();
      if (text === '') return 0;
      return /^[0-7]+$/.test(text) ? parseInt(text, 8) : 'error';
    };
    const alphabet = [0x20, 0x00, 0x30, 0x31, 0x37, 0x38, 0x09, 0x0a, 0xa0, 0x41, 0x35];
    const noise = prng(42, 12 * 40000);
    for (let t = 0; t < 40000; t++) {
      const len = 1 + (t % 12);
      const f = Buffer.alloc(len);
      for (let i = 0; i < len; i++) f[i] = alphabet[noise[12 * t + i]! % alphabet.length]!;
      if (f[0]! & 0x80) continue; // base-256, another path
      const block = Buffer.concat([Buffer.from('xx'), f, Buffer.from('yy')]);
      let got: number | 'error';
      try {
        got = decodeNumber(block, 2, len, 'f');
      } catch {
        got = 'error';
      }
      expect(got, JSON.stringify(f.toString('latin1'))).toBe(rule(f));
    }
    expect(decodeNumber(Buffer.from('0000644\0'), 0, 8, 'mode')).toBe(0o644);
    expect(decodeNumber(Buffer.from(' 12345670123 '), 0, 12, 'size')).toBe(0o12345670123);
  });
});

describe('device slot encoding of hostile claims', () => {
  it('a blob claiming more than 2^32 blocks is a one-line FORMAT error, not a RangeError (merge exited 70)', async () => {
    const device = await import('../../src/format/erofs/device.js');
    const { NydusError } = await import('../../src/errors.js');
    expect(() => device.encode({ blob_id: 'a'.repeat(64), blocks: 2 ** 35, mapped_blkaddr: 0 })).toThrow(NydusError);
    expect(() => device.encode({ blob_id: 'a'.repeat(64), blocks: 1, mapped_blkaddr: 2 ** 32 })).toThrow(/device_slot\.mapped_blkaddr = 4294967296/);
    expect(device.encode({ blob_id: 'a'.repeat(64), blocks: 0xffff_ffff, mapped_blkaddr: 0 }).readUInt32LE(64)).toBe(0xffff_ffff);
  });
});
