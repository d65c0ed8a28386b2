import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UPSTREAM } from '../helpers/upstream.js';
import { compressorByName, digesterByName } from '../../src/algo/index.js';
import { NydusError } from '../../src/errors.js';
import * as v5 from '../../src/format/rafs/v5.js';
import { CHUNK_COMPRESSED, isDir, isReg, isSymlink } from '../../src/read/model.js';
import type { ImageNode, RafsImage } from '../../src/read/model.js';
import { isV5, loadV5 } from '../../src/read/v5.js';

const REPEATABLE = resolve(UPSTREAM, 'repeatable');
const FIXTURES = ['sha256-nocompress-repeatable', 'blake3-lz4_block-non_repeatable'] as const;
/** The lz4_block build of the same tree; no fixture bootstrap references it (see relabelAsLz4). */
const LZ4_BLOB = 'd7b86b1e74e316fe945741d1a9fa1b271459fe41481e304977659e0c6ecf56ac';

const bootstrap = (name: string) => readFileSync(resolve(REPEATABLE, name));
const blobFile = (id: string) => readFileSync(resolve(REPEATABLE, 'blobs', id));

/** The `tree -J` listing and the `md5sum` lines that upstream stored in each .result file. */
function readResult(name: string): { tree: unknown; md5: Map<string, string> } {
  const text = readFileSync(resolve(REPEATABLE, `${name}.result`), 'utf8');
  const md5Start = text.search(/^[0-9a-f]{32} {2}\//m);
  const md5 = new Map<string, string>();
  for (const line of text.slice(md5Start).trim().split('\n')) {
    const [sum, path] = line.split(/ {2}/);
    md5.set(path, sum);
  }
  const listing = JSON.parse(text.slice(0, md5Start)) as unknown[];
  return { tree: listing[0], md5 };
}

type TreeJson = { type: string; name: string; target?: string; contents?: TreeJson[] };
function asTreeJson(n: ImageNode): TreeJson {
  const name = n.name.toString();
  if (isDir(n.mode)) return { type: 'directory', name, contents: n.children!.map(asTreeJson) };
  if (isSymlink(n.mode)) return { type: 'link', name, target: n.target!.toString(), contents: [] };
  if (isReg(n.mode)) return { type: 'file', name };
  return { type: `mode ${n.mode.toString(8)}`, name };
}

function walk(n: ImageNode, path: string, visit: (n: ImageNode, path: string) => void): void {
  visit(n, path || '/');
  for (const c of n.children ?? []) walk(c, `${path}/${c.name.toString()}`, visit);
}

/** A regular file's bytes: each chunk read at its compressed offset, decompressed, digest-checked. */
function readFileBytes(img: RafsImage, node: ImageNode, blobs: Buffer[]): Buffer {
  const compressor = compressorByName(img.compressor)!;
  const digester = digesterByName(img.digester)!;
  const out = Buffer.alloc(node.size);
  for (const c of node.chunks!) {
    // Upstream (storage/src/cache/mod.rs) decompresses exactly when the COMPRESSED flag is set.
    const compressed = (c.flags & CHUNK_COMPRESSED) !== 0;
    const stored = blobs[c.blobIndex].subarray(c.compressedOffset, c.compressedOffset + (compressed ? c.compressedSize : c.uncompressedSize));
    const data = Buffer.from(compressed ? compressor.decompress(stored, c.uncompressedSize) : stored);
    expect(data.length).toBe(c.uncompressedSize);
    expect(digester.digest(data).equals(c.digest)).toBe(true);
    data.copy(out, c.fileOffset);
  }
  return out;
}

function fileContents(img: RafsImage, blobs: Buffer[]): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  walk(img.root, '', (n, path) => {
    if (isReg(n.mode)) files.set(path, readFileBytes(img, n, blobs));
  });
  return files;
}

/** Total length of one LZ4 block that inflates to `outSize` bytes, found by walking its sequences. */
function lz4BlockLength(src: Buffer, start: number, outSize: number): number {
  let p = start;
  let out = 0;
  const extend = (n: number) => {
    if (n !== 15) return n;
    for (let b = 255; b === 255; n += b) b = src[p++];
    return n;
  };
  for (;;) {
    const token = src[p++];
    const literals = extend(token >> 4);
    p += literals;
    out += literals;
    if (out >= outSize) return p - start;
    p += 2;
    out += extend(token & 15) + 4;
  }
}

/**
 * Upstream's "blake3-lz4_block" bootstrap actually says NONE|BLAKE3 and points at the
 * uncompressed blob, while its real lz4_block blob (d7b86b1e) sits unreferenced. Rewrite the
 * bootstrap to describe that blob: same chunks in index order, packed back to back, each an LZ4
 * block or (where upstream's compression did not shrink it) raw. Uses the v5 encoders in place.
 */
function relabelAsLz4(boot: Buffer, lzBlob: Buffer): Buffer {
  const out = Buffer.from(boot);
  const sb = v5.decodeSuperBlock(out, 0);
  const digester = digesterByName('blake3')!;

  const table = v5.decodeInodeTable(out, sb.s_inode_table_offset, sb.s_inode_table_entries);
  const sites: { at: number; chunk: v5.RafsV5ChunkInfo }[] = [];
  for (let i = 1; i <= table.data.length; i++) {
    const off = v5.inodeOffset(table, i);
    const inode = v5.decodeInode(out, off);
    if ((inode.i_mode & 0o170000) !== 0o100000) continue;
    let at = off + v5.inodeRecordSize(inode);
    if (inode.i_flags & v5.InodeFlags.XATTR) at += v5.xattrAreaSize(v5.decodeXattrs(out, at));
    for (let k = 0; k < inode.i_child_count; k++) sites.push({ at: at + k * v5.CHUNK_INFO_SIZE, chunk: v5.decodeChunkInfo(out, at + k * v5.CHUNK_INFO_SIZE) });
  }

  const placed = new Map<number, { offset: number; size: number; compressed: boolean }>();
  let p = 0;
  for (const { chunk } of [...sites].sort((a, b) => a.chunk.index - b.chunk.index)) {
    if (placed.has(chunk.index)) continue;
    const asRaw = lzBlob.subarray(p, p + chunk.uncompressed_size);
    const isRaw = digester.digest(asRaw).equals(chunk.block_id);
    const size = isRaw ? chunk.uncompressed_size : lz4BlockLength(lzBlob, p, chunk.uncompressed_size);
    placed.set(chunk.index, { offset: p, size, compressed: !isRaw });
    p += size;
  }
  expect(p).toBe(lzBlob.length);

  for (const { at, chunk } of sites) {
    const where = placed.get(chunk.index)!;
    const flags = where.compressed ? chunk.flags | v5.ChunkFlags.COMPRESSED : chunk.flags & ~v5.ChunkFlags.COMPRESSED;
    v5.encodeChunkInfo({ ...chunk, compressed_offset: where.offset, compressed_size: where.size, flags }).copy(out, at);
  }
  const flags = (sb.s_flags & ~v5.SuperFlags.COMPRESSION_NONE) | v5.SuperFlags.COMPRESSION_LZ4;
  v5.encodeSuperBlock({ ...sb, s_flags: flags }).copy(out, 0);
  const blobs = v5.decodeBlobTable(out, sb.s_blob_table_offset, sb.s_blob_table_size);
  v5.encodeBlobTable([{ ...blobs[0], blob_id: LZ4_BLOB }]).copy(out, sb.s_blob_table_offset);
  const ext = v5.decodeExtBlobEntry(out, sb.s_extended_blob_table_offset);
  v5.encodeExtBlobEntry({ ...ext, compressed_size: lzBlob.length }).copy(out, sb.s_extended_blob_table_offset);
  return out;
}

describe.each(FIXTURES)('loadV5(%s)', (name) => {
  const boot = bootstrap(name);
  const img = loadV5(boot);
  const { tree, md5 } = readResult(name);

  it('is recognised as v5', () => {
    expect(isV5(boot)).toBe(true);
    expect(img.version).toBe(5);
    expect(img.bootstrapSize).toBe(boot.length);
  });

  it('decodes superblock facts and the blob table', () => {
    const digester = name.startsWith('sha256') ? 'sha256' : 'blake3';
    expect(img.digester).toBe(digester);
    // Despite its name, upstream built the blake3 fixture without compression too.
    expect(img.compressor).toBe('none');
    expect(img.flags).toBe(v5.SuperFlags.COMPRESSION_NONE | (digester === 'sha256' ? v5.SuperFlags.HASH_SHA256 : v5.SuperFlags.HASH_BLAKE3));
    expect(img.chunkSize).toBe(0x10_0000);
    expect(img.blockSize).toBe(4096);
    expect(img.inodeCount).toBe(51);
    expect(img.prefetch).toEqual([]);
    expect(img.blobs).toHaveLength(1);
    const blob = img.blobs[0];
    const data = blobFile(blob.blobId);
    expect(blob).toMatchObject({ index: 0, chunkSize: 0x10_0000, chunkCount: 23, compressor: 'none', digester, features: 0 });
    expect(blob.compressedSize).toBe(data.length);
    expect(blob.uncompressedSize).toBe(data.length);
  });

  it('decodes the tree exactly as upstream listed it', () => {
    expect(asTreeJson(img.root)).toEqual(tree);
  });

  it('keeps children and xattrs sorted by name bytes', () => {
    walk(img.root, '', (n) => {
      const names = (n.children ?? []).map((c) => c.name);
      expect([...names].sort(Buffer.compare)).toEqual(names);
      expect([...n.xattrs].sort((a, b) => Buffer.compare(a.name, b.name))).toEqual(n.xattrs);
    });
  });

  it('decodes attributes, symlinks and hardlinks', () => {
    const byPath = new Map<string, ImageNode>();
    walk(img.root, '', (n, path) => byPath.set(path, n));
    expect(img.root).toMatchObject({ ino: 1, name: Buffer.alloc(0), mode: 0o040755, nlink: 5 });
    const links = ['/hardlink-test/foo', '/hardlink-test/test.sh', '/normal-file-test/test.sh'].map((p) => byPath.get(p)!);
    for (const l of links) expect(l).toMatchObject({ ino: links[0].ino, nlink: 3, size: 944, mode: 0o100775 });
    const inos = [...byPath.values()].map((n) => n.ino);
    expect(new Set(inos).size).toBe(inos.length - 2);
    for (const [path, n] of byPath) {
      if (isSymlink(n.mode)) expect(n.size, path).toBe(n.target!.length);
      if (isReg(n.mode)) expect(n.chunks!.reduce((s, c) => s + c.uncompressedSize, 0), path).toBe(n.size);
      expect(n.mtime).toBe(path === '/' ? 0 : 1_668_232_305);
    }
    expect(byPath.get('/symlink-test/root-1')!.target!.toString()).toBe('/'.repeat(17));
    // head-hole-1 starts with two references to the same deduplicated zero chunk.
    const hole = byPath.get('/normal-file-test/holefiles/head-hole-1')!.chunks!;
    expect(hole.map((c) => c.fileOffset)).toEqual([0, 0x10_0000, 0x20_0000]);
    expect(hole[0].index).toBe(hole[1].index);
  });

  it('lists every chunk of every distinct inode, covering the whole blob', () => {
    const indexes = new Set(img.chunkTable.map((c) => c.index));
    expect([...indexes].sort((a, b) => a - b)).toEqual([...Array(23).keys()]);
    const unique = [...new Map(img.chunkTable.map((c) => [c.index, c])).values()];
    expect(unique.reduce((s, c) => s + c.compressedSize, 0)).toBe(img.blobs[0].compressedSize);
  });

  it('reads every file from the blob with verified chunk digests and upstream md5 sums', () => {
    const files = fileContents(img, img.blobs.map((b) => blobFile(b.blobId)));
    const sums = new Map([...files].map(([path, data]) => [path, createHash('md5').update(data).digest('hex')]));
    expect(sums).toEqual(md5);
  });
});

describe('both fixtures', () => {
  it('hold byte-identical files', () => {
    const [a, b] = FIXTURES.map((name) => {
      const img = loadV5(bootstrap(name));
      return fileContents(img, img.blobs.map((x) => blobFile(x.blobId)));
    });
    expect([...a.keys()]).toEqual([...b.keys()]);
    expect(a.size).toBe(23);
    for (const [path, data] of a) expect(data.equals(b.get(path)!), path).toBe(true);
  });

  it('read the same files from upstream\'s lz4_block blob', () => {
    const plain = loadV5(bootstrap(FIXTURES[0]));
    const expected = fileContents(plain, [blobFile(plain.blobs[0].blobId)]);
    const lz = loadV5(relabelAsLz4(bootstrap(FIXTURES[1]), blobFile(LZ4_BLOB)));
    expect(lz.compressor).toBe('lz4_block');
    expect(lz.blobs[0].blobId).toBe(LZ4_BLOB);
    const compressed = lz.chunkTable.filter((c) => c.flags & CHUNK_COMPRESSED);
    expect(compressed.length).toBeGreaterThan(15);
    expect(compressed.every((c) => c.compressedSize < c.uncompressedSize)).toBe(true);
    const got = fileContents(lz, [blobFile(LZ4_BLOB)]);
    expect([...got.keys()]).toEqual([...expected.keys()]);
    for (const [path, data] of got) expect(data.equals(expected.get(path)!), path).toBe(true);
  });
});

describe('rejecting bad bootstraps', () => {
  const boot = bootstrap(FIXTURES[0]);
  const expectFormat = (buf: Buffer, prefix: string) => {
    let err: unknown;
    try {
      loadV5(buf);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NydusError);
    expect((err as NydusError).code).toBe('FORMAT');
    expect((err as NydusError).message.startsWith(prefix)).toBe(true);
    expect((err as NydusError).message).not.toContain('\n');
  };

  it('tells v5 from v6 and from garbage', () => {
    expect(isV5(readFileSync(resolve(UPSTREAM, 'bootstrap/rafs-v6-2.2.boot')))).toBe(false);
    expect(isV5(Buffer.alloc(4))).toBe(false);
  });

  it('names the field that is wrong', () => {
    const badMagic = Buffer.from(boot);
    badMagic.writeUInt32LE(0x1234, 0);
    expectFormat(badMagic, 'superblock.s_magic = 0x1234');
    expectFormat(boot.subarray(0, 4096), 'superblock.offset');

    const sb = v5.decodeSuperBlock(boot, 0);
    const twoCompressors = Buffer.from(boot);
    v5.encodeSuperBlock({ ...sb, s_flags: sb.s_flags | v5.SuperFlags.COMPRESSION_ZSTD }).copy(twoCompressors);
    expectFormat(twoCompressors, 'superblock.s_flags = 0x89');

    const table = v5.decodeInodeTable(boot, sb.s_inode_table_offset, sb.s_inode_table_entries);
    const badNlink = Buffer.from(boot);
    badNlink.writeUInt32LE(0, v5.inodeOffset(table, 2) + 88);
    expectFormat(badNlink, 'inode 2.i_nlink = 0');

    const badTable = Buffer.from(boot);
    badTable.writeUInt32LE(3, sb.s_inode_table_offset + 4);
    expectFormat(badTable, 'inode_table.data[1] = 0x3');
  });
});
