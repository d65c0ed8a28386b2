// Decodes a RAFS v6 bootstrap (an EROFS image) into the reader model, checking every reference.
import { blobCipherFrom } from '../algo/cipher.js';
import { compressorByFlags, compressorById, digesterByFlags, digesterById } from '../algo/index.js';
import { NydusError, formatError } from '../errors.js';
import * as sbc from '../format/erofs/superblock.js';
import * as ino from '../format/erofs/inode.js';
import * as dirent from '../format/erofs/dirent.js';
import * as xattr from '../format/erofs/xattr.js';
import * as cidx from '../format/erofs/chunk-index.js';
import * as device from '../format/erofs/device.js';
import * as ext from '../format/rafs/ext-superblock.js';
import * as bt from '../format/rafs/blob-table.js';
import * as ci from '../format/rafs/chunk-info.js';
import { LIMITS, badBlobId, badName, limitError } from '../format/limits.js';
import { alignUp } from '../format/util.js';
import {
  S_IFMT, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, asFormatError, showName, showPath,
  type BlobInfo, type ChunkInfo, type ImageNode, type RafsImage,
} from './model.js';

export function isV6(buf: Buffer): boolean {
  return buf.length >= sbc.OFFSET + sbc.SIZE && buf.readUInt32LE(sbc.OFFSET) === sbc.MAGIC;
}

export function loadV6(buf: Buffer): RafsImage {
  if (buf.length % 4096 !== 0) throw formatError('bootstrap', 'length', buf.length, 'must be a multiple of 4096');
  const sb = sbc.decode(buf);
  sbc.validate(sb);
  const es = ext.decode(buf);
  ext.validate(es, buf.length);
  const B = 1 << sb.blkszbits;
  const compressor = compressorByFlags(es.flags);
  const digester = digesterByFlags(es.flags);
  if (!compressor) throw formatError('ext_superblock', 'flags', `0x${es.flags.toString(16)}`, 'needs exactly one compression bit');
  if (!digester) throw formatError('ext_superblock', 'flags', `0x${es.flags.toString(16)}`, 'needs exactly one digest bit');

  const nblobs = es.blob_table_size / bt.SIZE;
  if (nblobs !== sb.extra_devices) throw formatError('superblock', 'extra_devices', sb.extra_devices, `blob table holds ${nblobs} entries`);
  const blobs: BlobInfo[] = [];
  for (let i = 0; i < nblobs; i++) {
    const e = bt.decode(buf, es.blob_table_offset + i * bt.SIZE);
    bt.validate(e, i, es.chunk_size);
    // A blob id names a file in -D: never a path.
    const badId = badBlobId(e.blob_id);
    if (badId) throw new NydusError('FORMAT', `blob_table[${i}].blob_id: ${badId}`);
    const slot = device.decode(buf, sbc.DEVT_SLOTOFF * 128 + i * device.SIZE);
    const badSlot = badBlobId(slot.blob_id);
    if (badSlot) throw new NydusError('FORMAT', `device_slot[${i}].blob_id: ${badSlot}`);
    if (slot.blob_id !== e.blob_id) throw formatError(`device_slot[${i}]`, 'blob_id', slot.blob_id, `differs from the blob table's ${e.blob_id}`);
    // The key and IV are checked where they are read, not at the first chunk.
    blobCipherFrom(e.cipher_algo, e.blob_meta_digest, e.cipher_iv, `blob_table[${i}]`);
    blobs.push({
      index: i,
      blobId: e.blob_id,
      chunkSize: e.chunk_size,
      chunkCount: e.chunk_count,
      compressor: compressorById(e.compression_algo)!.name,
      digester: digesterById(e.digest_algo)!.name,
      features: e.features,
      compressedSize: e.compressed_size,
      uncompressedSize: e.uncompressed_size,
      tocSize: e.blob_toc_size,
      tocDigest: e.blob_toc_digest,
      ciCompressor: compressorById(e.ci_compressor)?.name ?? 'none',
      ciOffset: e.ci_offset,
      ciCompressedSize: e.ci_compressed_size,
      ciUncompressedSize: e.ci_uncompressed_size,
      metaDigest: e.blob_meta_digest,
      metaSize: e.blob_meta_size,
      cipherAlgo: e.cipher_algo,
      cipherIv: e.cipher_iv,
    });
  }

  const chunkTable: ChunkInfo[] = [];
  const byRef = new Map<number, ChunkInfo>();
  for (let off = es.chunk_table_offset; off < es.chunk_table_offset + es.chunk_table_size; off += ci.SIZE) {
    const c = ci.decode(buf, off);
    if (c.blob_index >= nblobs) throw formatError('chunk_info', 'blob_index', c.blob_index, `only ${nblobs} blobs`);
    const info: ChunkInfo = {
      blobIndex: c.blob_index, index: c.index, digest: c.digest, flags: c.flags,
      compressedOffset: c.compressed_offset, compressedSize: c.compressed_size,
      uncompressedOffset: c.uncompressed_offset, uncompressedSize: c.uncompressed_size,
      fileOffset: c.file_offset, crc32: c.crc32,
    };
    chunkTable.push(info);
    byRef.set(c.blob_index * 2 ** 24 + c.index, info);
  }

  const prefetch: number[] = [];
  for (let i = 0; i < es.prefetch_table_size / 4; i++) prefetch.push(buf.readUInt32LE(es.prefetch_table_offset + i * 4));

  const tarfs = (es.flags & ext.FLAG_TARFS_MODE) !== 0;
  const metaBase = sb.meta_blkaddr * B;
  const nodeAt = (nid: number) => metaBase + nid * ino.SLOT_SIZE;

  // Every structure a valid bootstrap holds lies in its own bytes, so the bytes decoded (inodes,
  // xattrs, directory and symlink data, chunk indexes) never add up to more than the file. A
  // crafted one can point many inodes or directories at the same bytes: this bounds the work.
  let decoded = 0;
  const spend = (bytes: number, where: string) => {
    decoded += bytes;
    if (decoded > buf.length) {
      throw new NydusError('FORMAT', `bootstrap is corrupt: ${where} makes the structures decoded ${decoded} bytes, more than the bootstrap's ${buf.length} (shared or overlapping structures)`);
    }
  };

  const data = (nid: number, i: ino.Inode, xsize: number): Buffer => {
    const size = i.i_size;
    if (size > buf.length) throw formatError(`inode@nid${nid}`, 'i_size', size, `larger than the bootstrap (${buf.length} bytes)`);
    spend(size, `inode@nid${nid}`);
    if (i.layout === ino.LAYOUT_FLAT_PLAIN) {
      const start = i.i_u * B;
      if (start + size > buf.length) throw formatError(`inode@nid${nid}`, 'i_u', i.i_u, 'data blocks past the end of the bootstrap');
      return buf.subarray(start, start + size);
    }
    if (i.layout !== ino.LAYOUT_FLAT_INLINE) throw formatError(`inode@nid${nid}`, 'i_format', i.layout, 'directories and symlinks must be flat');
    const full = Math.floor(size / B) * B;
    const tail = size - full;
    const tailOff = nodeAt(nid) + ino.inodeSize(i) + xsize;
    if (tail > 0 && Math.floor(tailOff / B) !== Math.floor((tailOff + tail - 1) / B)) {
      throw formatError(`inode@nid${nid}`, 'i_size', size, 'inline data crosses a block boundary');
    }
    const parts: Buffer[] = [];
    if (full > 0) parts.push(buf.subarray(i.i_u * B, i.i_u * B + full));
    if (tail > 0) parts.push(buf.subarray(tailOff, tailOff + tail));
    const out = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    if (out.length !== size) throw formatError(`inode@nid${nid}`, 'i_size', size, 'data runs past the end of the bootstrap');
    return out;
  };

  const chunksOf = (nid: number, i: ino.Inode, after: number): ChunkInfo[] => {
    if (i.layout !== ino.LAYOUT_CHUNK_BASED) {
      if (i.i_size === 0) return [];
      throw formatError(`inode@nid${nid}`, 'i_format', i.layout, 'RAFS regular files must be chunk-based');
    }
    cidx.parseFormatWord(i.i_u, sb.blkszbits);
    const count = Math.ceil(i.i_size / es.chunk_size);
    const base = alignUp(after, 8);
    // The claim is checked against the bytes present before anything is allocated for it.
    const room = Math.max(0, Math.floor((buf.length - base) / cidx.SIZE));
    if (count > room) throw formatError(`inode@nid${nid}`, 'i_size', i.i_size, `needs ${count} chunk indexes of ${es.chunk_size} bytes, the bootstrap holds at most ${room} after the inode`);
    spend(count * cidx.SIZE, `inode@nid${nid}`);
    const out: ChunkInfo[] = [];
    for (let k = 0; k < count; k++) {
      const x = cidx.decode(buf, base + k * cidx.SIZE);
      const blobIndex = x.device_id - 1;
      if (blobIndex < 0 || blobIndex >= nblobs) throw formatError(`inode@nid${nid}`, `chunk[${k}].device_id`, x.device_id, `only ${nblobs} blobs`);
      const want = Math.min(es.chunk_size, i.i_size - k * es.chunk_size);
      const found = byRef.get(blobIndex * 2 ** 24 + x.ci_index);
      if (found) {
        if (!tarfs && found.uncompressedOffset !== x.blkaddr * B) {
          throw formatError(`inode@nid${nid}`, `chunk[${k}].blkaddr`, x.blkaddr, `chunk table says offset ${found.uncompressedOffset}`);
        }
        out.push({ ...found, fileOffset: k * es.chunk_size });
      } else if (tarfs || es.chunk_table_size === 0) {
        out.push({
          blobIndex, index: x.ci_index, digest: Buffer.alloc(32), flags: 0,
          compressedOffset: x.blkaddr * B, compressedSize: want,
          uncompressedOffset: x.blkaddr * B, uncompressedSize: want, fileOffset: k * es.chunk_size, crc32: 0,
        });
      } else {
        throw formatError(`inode@nid${nid}`, `chunk[${k}].ci_index`, x.ci_index, `no chunk-table entry for blob ${blobIndex}`);
      }
      const last = out[out.length - 1];
      if (last.uncompressedSize !== want) throw formatError(`inode@nid${nid}`, `chunk[${k}].uncompressed_size`, last.uncompressedSize, `file needs ${want}`);
      if (last.uncompressedOffset + last.uncompressedSize > blobs[blobIndex].uncompressedSize && !tarfs) {
        throw formatError(`inode@nid${nid}`, `chunk[${k}]`, last.uncompressedOffset, `past the end of blob ${blobs[blobIndex].blobId}`);
      }
    }
    return out;
  };

  /** Decodes the inode at nid into a node named `name`; directories get an empty child list. */
  const decodeNode = (nid: number, name: Buffer): { node: ImageNode; inode: ino.Inode; xsize: number } => {
    const off = nodeAt(nid);
    if (!Number.isSafeInteger(off) || off + ino.COMPACT_SIZE > buf.length) throw formatError('dirent', 'nid', nid, 'points past the end of the bootstrap');
    const i = ino.decode(buf, off, sb.build_time);
    const xsize = xattr.sizeOfIcount(i.i_xattr_icount);
    spend(ino.inodeSize(i) + xsize, `inode@nid${nid}`);
    const xattrs = xattr.decode(buf, off + ino.inodeSize(i), i.i_xattr_icount).sort((a, b) => Buffer.compare(a.name, b.name));
    const type = i.i_mode & S_IFMT;
    if (i.i_nlink === 0) throw formatError(`inode@nid${nid}`, 'i_nlink', 0, 'nlink must not be 0');
    const node: ImageNode = {
      ino: nid, name, mode: i.i_mode, uid: i.i_uid, gid: i.i_gid, size: i.i_size,
      mtime: i.i_mtime, mtimeNsec: i.i_mtime_nsec, nlink: i.i_nlink,
      rdev: type === S_IFCHR || type === S_IFBLK ? i.i_u : 0, xattrs,
    };
    if (type === S_IFDIR) node.children = [];
    else if (type === S_IFLNK) node.target = Buffer.from(data(nid, i, xsize));
    else if (type === S_IFREG) node.chunks = chunksOf(nid, i, off + ino.inodeSize(i) + xsize);
    return { node, inode: i, xsize };
  };

  // A non-directory inode is decoded once; every further dirent naming it (hardlinks, or a
  // crafted image naming one huge file thousands of times) shares its xattrs, target and chunks.
  const shared = new Map<number, ImageNode>();
  const entryFor = (nid: number, name: Buffer): { node: ImageNode; inode?: ino.Inode; xsize?: number } => {
    const first = shared.get(nid);
    if (first) return { node: { ...first, name } };
    const d = decodeNode(nid, name);
    if (!d.node.children) shared.set(nid, d.node);
    return d;
  };

  interface Dir {
    nid: number;
    parentNid: number;
    node: ImageNode;
    inode: ino.Inode;
    xsize: number;
    depth: number;
    parent?: Dir;
  }
  const pathOf = (dir: Dir, name?: Buffer): string => {
    const names: Buffer[] = name ? [name] : [];
    for (let d: Dir | undefined = dir; d?.parent; d = d.parent) names.push(d.node.name);
    return showPath(names.reverse());
  };

  const dirsSeen = new Set<number>();
  let entries = 1;
  let root: ImageNode;
  try {
    const top = decodeNode(sb.root_nid, Buffer.alloc(0));
    root = top.node;
    if (!root.children) throw formatError('superblock', 'root_nid', sb.root_nid, 'root is not a directory');
    // Directories are walked with an explicit stack: a crafted (or just deep) tree must not
    // exhaust the JS stack.
    const stack: Dir[] = [{ nid: sb.root_nid, parentNid: sb.root_nid, node: root, inode: top.inode, xsize: top.xsize, depth: 0 }];
    dirsSeen.add(sb.root_nid);
    for (let dir = stack.pop(); dir; dir = stack.pop()) {
      const d = data(dir.nid, dir.inode, dir.xsize);
      const children = dir.node.children!;
      let prev: Buffer | undefined;
      for (let start = 0; start < d.length; start += B) {
        for (const e of dirent.decodeBlock(d, start, Math.min(B, d.length - start), B)) {
          if (prev && Buffer.compare(prev, e.name) >= 0) {
            throw new NydusError('FORMAT', `directory ${pathOf(dir)}: entry ${showName(e.name)} ${prev.equals(e.name) ? 'appears twice' : `is not sorted after ${showName(prev)}`}`);
          }
          prev = e.name;
          if (e.name.equals(DOT) || e.name.equals(DOTDOT)) {
            const want = e.name.length === 1 ? dir.nid : dir.parentNid;
            if (e.nid !== want) throw new NydusError('FORMAT', `directory ${pathOf(dir)}: entry ${showName(e.name)} points to nid ${e.nid}, not to ${e.name.length === 1 ? 'the directory itself' : 'its parent'} (nid ${want})`);
            continue;
          }
          const why = badName(e.name);
          if (why) throw new NydusError('FORMAT', `directory ${pathOf(dir)}: entry ${showName(e.name)}: ${why}`);
          // The path is spelled only for the message: building it per entry is quadratic in depth.
          if (++entries > LIMITS.ENTRIES_MAX.value) throw limitError('ENTRIES_MAX', `bootstrap entries at ${pathOf(dir, e.name)}`, entries);
          const { node: child, inode, xsize } = entryFor(e.nid, e.name);
          children.push(child);
          if (!child.children) continue;
          if (dirsSeen.has(e.nid)) throw new NydusError('FORMAT', `directory ${pathOf(dir, e.name)}: nid ${e.nid} is a directory reached twice (a hardlinked directory or a loop)`);
          dirsSeen.add(e.nid);
          if (dir.depth + 1 > LIMITS.DEPTH_MAX.value) throw limitError('DEPTH_MAX', `directory ${pathOf(dir, e.name)}`, dir.depth + 1);
          stack.push({ nid: e.nid, parentNid: dir.nid, node: child, inode: inode!, xsize: xsize!, depth: dir.depth + 1, parent: dir });
        }
      }
    }
  } catch (e) {
    throw asFormatError(e);
  }

  return {
    version: 6, flags: es.flags, compressor: compressor.name, digester: digester.name,
    chunkSize: es.chunk_size, blockSize: B, inodeCount: sb.inos, blobs, chunkTable, prefetch, root,
    bootstrapSize: buf.length,
  };
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
