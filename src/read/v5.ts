// Decodes a whole RAFS v5 bootstrap into the version-neutral reader model.
import { COMPRESSORS, DIGESTERS, compressorByFlags, compressorByName, digesterByFlags, digesterByName } from '../algo/index.js';
import type { Compressor, Digester } from '../algo/index.js';
import { NydusError, formatError } from '../errors.js';
import { LIMITS, badBlobId, badName, limitError } from '../format/limits.js';
import * as v5 from '../format/rafs/v5.js';
import { asFormatError, isDir, isReg, showName, showPath } from './model.js';
import type { BlobInfo, ChunkInfo, ImageNode, RafsImage, Xattr } from './model.js';

const METADATA_BLOCK_SIZE = 4096;
const DIGEST_SIZE = 32;
const COMPRESSION_BITS = COMPRESSORS.reduce((m, c) => m | c.superFlag, 0);
const DIGEST_BITS = DIGESTERS.reduce((m, d) => m | d.superFlag, 0);

/** True when the buffer starts with a RAFS v5 superblock (magic and version). */
export function isV5(buf: Buffer): boolean {
  return buf.length >= 8 && buf.readUInt32LE(0) === v5.MAGIC && buf.readUInt32LE(4) === v5.VERSION_V5;
}

// Upstream falls back to lz4_block / blake3 when no bit is set; two bits set is corrupt.
function compressorOf(flags: number): Compressor {
  const c = (flags & COMPRESSION_BITS) === 0 ? compressorByName('lz4_block') : compressorByFlags(flags);
  if (!c) throw formatError('superblock', 's_flags', `0x${flags.toString(16)}`, 'more than one compression bit set');
  return c;
}
function digesterOf(flags: number): Digester {
  const d = (flags & DIGEST_BITS) === 0 ? digesterByName('blake3') : digesterByFlags(flags);
  if (!d) throw formatError('superblock', 's_flags', `0x${flags.toString(16)}`, 'more than one hash bit set');
  return d;
}

function loadBlobs(buf: Buffer, sb: v5.RafsV5SuperBlock, compressor: Compressor, digester: Digester): BlobInfo[] {
  const ext = sb.s_extended_blob_table_entries > 0 && sb.s_extended_blob_table_offset > 0
    ? v5.decodeExtBlobTable(buf, sb.s_extended_blob_table_offset, sb.s_extended_blob_table_entries)
    : [];
  const entries = v5.decodeBlobTable(buf, sb.s_blob_table_offset, sb.s_blob_table_size);
  if (ext.length > 0 && ext.length < entries.length) {
    throw formatError('superblock', 's_extended_blob_table_entries', ext.length, `shorter than the blob table (${entries.length} blobs)`);
  }
  return entries.map((e, index): BlobInfo => {
    // A blob id names a file in -D: never a path.
    const badId = badBlobId(e.blob_id);
    if (badId) throw new NydusError('FORMAT', `blob_table[${index}].blob_id: ${badId}`);
    // Without an extended table upstream knows no counts or sizes and marks the blob so.
    const x = ext[index] ?? { chunk_count: 0, features: v5.BLOB_FEATURE_V5_NO_EXT_BLOB_TABLE, uncompressed_size: 0, compressed_size: 0 };
    return {
      index,
      blobId: e.blob_id,
      chunkSize: sb.s_block_size,
      chunkCount: x.chunk_count,
      compressor: compressor.name,
      digester: digester.name,
      features: x.features,
      compressedSize: x.compressed_size,
      uncompressedSize: x.uncompressed_size,
      tocSize: 0,
      tocDigest: Buffer.alloc(DIGEST_SIZE),
      ciCompressor: 'none',
      ciOffset: 0,
      ciCompressedSize: 0,
      ciUncompressedSize: 0,
      metaDigest: Buffer.alloc(DIGEST_SIZE),
      metaSize: 0,
    };
  });
}

function toChunk(c: v5.RafsV5ChunkInfo): ChunkInfo {
  return {
    blobIndex: c.blob_index,
    index: c.index,
    digest: c.block_id,
    flags: c.flags,
    compressedOffset: c.compressed_offset,
    compressedSize: c.compressed_size,
    uncompressedOffset: c.uncompressed_offset,
    uncompressedSize: c.uncompressed_size,
    fileOffset: c.file_offset,
    // Upstream reports crc32 only when the chunk says it carries one.
    crc32: (c.flags & v5.ChunkFlags.HAS_CRC32) !== 0 ? c.crc32 : 0,
  };
}

interface InodeRecord {
  node: ImageNode;
  inode: v5.RafsV5Inode;
}

/**
 * Decodes the inode record (inode, names, xattrs, chunk infos) at child index `index`. `spend`
 * is told each record's size before its chunk infos are allocated: records of a valid bootstrap
 * are distinct bytes, so their sizes never add up to more than the file.
 */
function readRecord(buf: Buffer, table: v5.RafsV5InodeTable, index: number, blobCount: number, chunkSize: number, spend: (bytes: number, where: string) => void): InodeRecord {
  const off = v5.inodeOffset(table, index);
  const inode = v5.decodeInode(buf, off);
  v5.validateInode(inode, table.data.length);
  const names = v5.decodeInodeNames(buf, off + v5.INODE_SIZE, inode);
  let p = off + v5.inodeRecordSize(inode);
  spend(v5.inodeRecordSize(inode), `inode ${inode.i_ino}`);

  let xattrs: Xattr[] = [];
  if ((inode.i_flags & v5.InodeFlags.XATTR) !== 0) {
    const area = v5.decodeXattrs(buf, p);
    p += v5.xattrAreaSize(area);
    spend(v5.xattrAreaSize(area), `inode ${inode.i_ino}`);
    xattrs = area.pairs.map((x) => ({ name: x.name, value: x.value })).sort((a, b) => Buffer.compare(a.name, b.name));
  }

  const node: ImageNode = {
    ino: inode.i_ino,
    name: index === v5.ROOT_INODE ? Buffer.alloc(0) : names.name,
    mode: inode.i_mode,
    uid: inode.i_uid,
    gid: inode.i_gid,
    size: inode.i_size,
    mtime: inode.i_mtime,
    mtimeNsec: inode.i_mtime_nsec,
    nlink: inode.i_nlink,
    rdev: inode.i_rdev,
    xattrs,
  };
  if (names.symlink !== undefined) node.target = names.symlink;
  if (isReg(inode.i_mode)) {
    // The count is checked against the bytes present before anything is allocated for it.
    const room = Math.max(0, Math.floor((buf.length - p) / v5.CHUNK_INFO_SIZE));
    if (inode.i_child_count > room) {
      throw formatError(`inode ${inode.i_ino}`, 'i_child_count', inode.i_child_count, `claims more chunk infos than the ${room} the bootstrap holds after it`);
    }
    spend(inode.i_child_count * v5.CHUNK_INFO_SIZE, `inode ${inode.i_ino}`);
    node.chunks = [];
    for (let k = 0; k < inode.i_child_count; k++) {
      const c = v5.decodeChunkInfo(buf, p + k * v5.CHUNK_INFO_SIZE);
      v5.validateChunkInfo(c, blobCount, chunkSize);
      node.chunks.push(toChunk(c));
    }
  }
  if (isDir(inode.i_mode)) node.children = [];
  return { node, inode };
}

/** Decodes a RAFS v5 bootstrap: superblock, tables and the whole tree. */
export function loadV5(buf: Buffer): RafsImage {
  const sb = v5.decodeSuperBlock(buf, 0);
  v5.validateSuperBlock(sb, buf.length);
  const compressor = compressorOf(sb.s_flags);
  const digester = digesterOf(sb.s_flags);
  const blobs = loadBlobs(buf, sb, compressor, digester);
  const table = v5.decodeInodeTable(buf, sb.s_inode_table_offset, sb.s_inode_table_entries);
  const prefetch = sb.s_prefetch_table_entries > 0
    ? v5.decodePrefetchTable(buf, sb.s_prefetch_table_offset, sb.s_prefetch_table_entries).inodes
    : [];

  let decoded = 0;
  const spend = (bytes: number, where: string) => {
    decoded += bytes;
    if (decoded > buf.length) {
      throw new NydusError('FORMAT', `bootstrap is corrupt: ${where} makes the records decoded ${decoded} bytes, more than the bootstrap's ${buf.length} (shared or overlapping records)`);
    }
  };

  interface Dir {
    record: InodeRecord;
    depth: number;
    parent?: Dir;
  }
  const pathOf = (dir: Dir, name?: Buffer): string => {
    const names: Buffer[] = name ? [name] : [];
    for (let d: Dir | undefined = dir; d?.parent; d = d.parent) names.push(d.record.node.name);
    return showPath(names.reverse());
  };

  let root: InodeRecord;
  const chunksByIndex = new Map<number, ChunkInfo[]>();
  try {
    root = readRecord(buf, table, v5.ROOT_INODE, blobs.length, sb.s_block_size, spend);
    if (!root.node.children) throw formatError('inode 1', 'i_mode', `0o${root.inode.i_mode.toString(8)}`, 'the root must be a directory');

    // Iterative walk: a crafted bootstrap could nest deeper than the JS stack.
    const visited = new Set<number>([v5.ROOT_INODE]);
    const dirInos = new Set<number>([root.inode.i_ino]);
    const seenIno = new Set<number>();
    let entries = 1;
    const pending: Dir[] = [{ record: root, depth: 0 }];
    for (let dir = pending.pop(); dir; dir = pending.pop()) {
      const { i_child_index: first, i_child_count: count } = dir.record.inode;
      const children = dir.record.node.children!;
      for (let index = first; index < first + count; index++) {
        if (visited.has(index)) throw formatError(`inode ${dir.record.inode.i_ino}`, 'i_child_index', first, `child index ${index} is reachable twice`);
        visited.add(index);
        const child = readRecord(buf, table, index, blobs.length, sb.s_block_size, spend);
        const name = child.node.name;
        const why = badName(name);
        if (why) throw new NydusError('FORMAT', `directory ${pathOf(dir)}: entry ${showName(name)}: ${why}`);
        // The path is spelled only for the message: building it per entry is quadratic in depth.
        if (++entries > LIMITS.ENTRIES_MAX.value) throw limitError('ENTRIES_MAX', `bootstrap entries at ${pathOf(dir, name)}`, entries);
        children.push(child.node);
        if (child.node.children) {
          if (dirInos.has(child.inode.i_ino)) throw new NydusError('FORMAT', `directory ${pathOf(dir, name)}: inode ${child.inode.i_ino} is a directory reached twice (a hardlinked directory)`);
          dirInos.add(child.inode.i_ino);
          if (dir.depth + 1 > LIMITS.DEPTH_MAX.value) throw limitError('DEPTH_MAX', `directory ${pathOf(dir, name)}`, dir.depth + 1);
          pending.push({ record: child, depth: dir.depth + 1, parent: dir });
        }
        if (child.node.chunks && !seenIno.has(child.node.ino)) {
          seenIno.add(child.node.ino);
          chunksByIndex.set(index, child.node.chunks);
        }
      }
      // Records are stored in any order; names are unique once sorted, or one entry would hide
      // another (a symlink and a directory of the same name).
      children.sort((a, b) => Buffer.compare(a.name, b.name));
      for (let k = 1; k < children.length; k++) {
        if (children[k - 1].name.equals(children[k].name)) throw new NydusError('FORMAT', `directory ${pathOf(dir)}: entry ${showName(children[k].name)} appears twice`);
      }
    }
  } catch (e) {
    throw asFormatError(e);
  }

  const chunkTable = [...chunksByIndex.entries()].sort(([a], [b]) => a - b).flatMap(([, chunks]) => chunks);
  return {
    version: 5,
    flags: sb.s_flags,
    compressor: compressor.name,
    digester: digester.name,
    chunkSize: sb.s_block_size,
    blockSize: METADATA_BLOCK_SIZE,
    inodeCount: sb.s_inodes_count,
    blobs,
    chunkTable,
    prefetch,
    root: root.node,
    bootstrapSize: buf.length,
  };
}
