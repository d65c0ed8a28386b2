// Decodes a RAFS v6 bootstrap (an EROFS image) into the reader model, checking every reference.
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
import { alignUp } from '../format/util.js';
import { S_IFMT, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, type BlobInfo, type ChunkInfo, type ImageNode, type RafsImage } from './model.js';

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
    const slot = device.decode(buf, sbc.DEVT_SLOTOFF * 128 + i * device.SIZE);
    if (slot.blob_id !== e.blob_id) throw formatError(`device_slot[${i}]`, 'blob_id', slot.blob_id, `differs from the blob table's ${e.blob_id}`);
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
  const dirsSeen = new Set<number>();

  const data = (nid: number, i: ino.Inode, xsize: number): Buffer => {
    const size = i.i_size;
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

  const load = (nid: number, name: Buffer, depth: number): ImageNode => {
    if (depth > 4096) throw formatError('directory', 'depth', depth, 'too deep (a loop?)');
    const off = nodeAt(nid);
    if (off + ino.COMPACT_SIZE > buf.length) throw formatError('dirent', 'nid', nid, 'points past the end of the bootstrap');
    const i = ino.decode(buf, off, sb.build_time);
    const xsize = xattr.sizeOfIcount(i.i_xattr_icount);
    const xattrs = xattr.decode(buf, off + ino.inodeSize(i), i.i_xattr_icount).sort((a, b) => Buffer.compare(a.name, b.name));
    const type = i.i_mode & S_IFMT;
    if (i.i_nlink === 0) throw formatError(`inode@nid${nid}`, 'i_nlink', 0, 'nlink must not be 0');
    const node: ImageNode = {
      ino: nid, name, mode: i.i_mode, uid: i.i_uid, gid: i.i_gid, size: i.i_size,
      mtime: i.i_mtime, mtimeNsec: i.i_mtime_nsec, nlink: i.i_nlink,
      rdev: type === S_IFCHR || type === S_IFBLK ? i.i_u : 0, xattrs,
    };
    if (type === S_IFDIR) {
      if (dirsSeen.has(nid)) throw formatError('dirent', 'nid', nid, 'directory reached twice (a loop?)');
      dirsSeen.add(nid);
      const d = data(nid, i, xsize);
      const children: ImageNode[] = [];
      let prev: Buffer | undefined;
      for (let start = 0; start < d.length; start += B) {
        for (const e of dirent.decodeBlock(d, start, Math.min(B, d.length - start), B)) {
          if (prev && Buffer.compare(prev, e.name) >= 0) throw formatError(`directory@nid${nid}`, 'name', e.name.toString('latin1'), 'entries are not sorted');
          prev = e.name;
          if (e.name.equals(DOT) || e.name.equals(DOTDOT)) continue;
          children.push(load(e.nid, e.name, depth + 1));
        }
      }
      node.children = children;
    } else if (type === S_IFLNK) {
      node.target = Buffer.from(data(nid, i, xsize));
    } else if (type === S_IFREG) {
      node.chunks = chunksOf(nid, i, off + ino.inodeSize(i) + xsize);
    }
    return node;
  };

  const chunksOf = (nid: number, i: ino.Inode, after: number): ChunkInfo[] => {
    if (i.layout !== ino.LAYOUT_CHUNK_BASED) {
      if (i.i_size === 0) return [];
      throw formatError(`inode@nid${nid}`, 'i_format', i.layout, 'RAFS regular files must be chunk-based');
    }
    cidx.parseFormatWord(i.i_u, sb.blkszbits);
    const count = Math.ceil(i.i_size / es.chunk_size);
    const base = alignUp(after, 8);
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

  let root: ImageNode;
  try {
    root = load(sb.root_nid, Buffer.alloc(0), 0);
  } catch (e) {
    if (e instanceof NydusError) throw e;
    throw new NydusError('FORMAT', `bootstrap is corrupt: ${(e as Error).message}`, { cause: e });
  }
  if ((root.mode & S_IFMT) !== S_IFDIR) throw formatError('superblock', 'root_nid', sb.root_nid, 'root is not a directory');

  return {
    version: 6, flags: es.flags, compressor: compressor.name, digester: digester.name,
    chunkSize: es.chunk_size, blockSize: B, inodeCount: sb.inos, blobs, chunkTable, prefetch, root,
    bootstrapSize: buf.length,
  };
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
