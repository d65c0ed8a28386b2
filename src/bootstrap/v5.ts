// RAFS v5 bootstrap: planned as data (numbers, digests, every record's offset), then written
// front to back into one buffer. Upstream's rules (builder/src/core/{bootstrap,v5}.rs):
//   superblock | inode table | prefetch table | blob table | extended blob table |
//   one record per name in DFS pre-order: inode + name + symlink, xattrs, chunk infos.
// Numbers (i_ino, the inode-table slots) follow the dump walk as in v6: root 1, a directory's
// children numbered before its subdirectories' (tar-merge-export.md §3.3).
import type { Digester } from '../algo/index.js';
import { NydusError } from '../errors.js';
import { LIMITS, checkLimit, limitError } from '../format/limits.js';
import { S_IFBLK, S_IFCHR, S_IFIFO } from '../format/mode.js';
import type * as bt from '../format/rafs/blob-table.js';
import * as v5 from '../format/rafs/v5.js';
import type { ChunkInfo } from '../read/model.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, walk, type TreeNode } from '../tree/node.js';
import { checkEntry, showEntry } from './plan.js';

/** A blob as the v5 blob table and extended blob table record it. */
export interface V5Blob {
  blob_id: string;
  chunk_count: number;
  features: number;
  uncompressed_size: number;
  compressed_size: number;
}

export interface V5Input {
  root: TreeNode;
  /** Every chunk the tree references (TreeNode.chunks index it), blobIndex = table position. */
  chunks: ChunkInfo[];
  blobs: V5Blob[];
  /** RafsSuperFlags the builder decides (compressor, digester); EXPLICIT_UID_GID and HAS_XATTR are added here. */
  flags: number;
  chunkSize: number;
  explicitUidGid: boolean;
  /** Hashes the inode digests (the image's digester). */
  digester: Digester;
  /** Nodes whose inode numbers go in the prefetch table, in order. */
  prefetch: TreeNode[];
  /** Regular files upstream's tar builder marks HARDLINK (every name of a tar hardlink group). */
  hardlinkFlagged?: ReadonlySet<TreeNode>;
}

/** One record: a name of the tree and where its bytes go. */
interface Record5 {
  node: TreeNode;
  /** The inode this name shows (a hardlink shows its group's first node). */
  inode: TreeNode;
  parent?: TreeNode;
  /** Inode-table slot (1-based). */
  index: number;
  offset: number;
  xattrs: Buffer;
}

/** Upstream's pseudo size of a v5 directory: 8 bytes plus the name per child, in 4 KiB blocks. */
const VIRTUAL_ENTRY_SIZE = 8;
function dirSize(dir: TreeNode): number {
  const d = (dir.children ?? []).reduce((n, c) => n + c.name.length + VIRTUAL_ENTRY_SIZE, 0);
  return d === 0 ? 4096 : Math.ceil(d / 4096) * 4096;
}

/** Bytes of an inode's xattr pairs as upstream counts them for i_blocks (no header, aligned to 8). */
const xattrPairsSize = (n: TreeNode) => v5.align8(n.xattrs.reduce((s, x) => s + 4 + x.name.length + 1 + x.value.length, 0));

export function emitBootstrapV5(input: V5Input): Buffer {
  const { root, chunks, digester } = input;
  checkLimit('BLOBS_MAX', 'blobs in the image', input.blobs.length);

  // Numbering: the dump walk, with each directory's first child index (an empty directory
  // still gets the number its first child would have had, as upstream's counter stands).
  const index = new Map<TreeNode, number>();
  const childIndex = new Map<TreeNode, number>();
  const ino = new Map<TreeNode, number>();
  let n = 1;
  index.set(root, 1);
  ino.set(root, 1);
  let unique = 1;
  const dirs: TreeNode[] = [root];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    childIndex.set(dir, n + 1);
    const kids = dir.children ?? [];
    for (const c of kids) {
      n++;
      if (n > LIMITS.ENTRIES_MAX.value) throw limitError('ENTRIES_MAX', `${showEntry(c)}: entries in the tree`, n);
      index.set(c, n);
      // A hardlink group goes by the number of its member met first.
      const group = c.linkTo ?? c;
      if (!ino.has(group)) {
        ino.set(group, n);
        unique++;
      }
    }
    for (let i = kids.length - 1; i >= 0; i--) if ((kids[i].mode & S_IFMT) === S_IFDIR) dirs.push(kids[i]);
  }
  const entries = n;
  const inoOf = (node: TreeNode) => ino.get(node.linkTo ?? node)!;

  // Records in DFS pre-order, each name's parent remembered for i_parent; limits checked here,
  // the one walk every v5 build (directory, tar, merge, layer on a parent) goes through.
  const order: Record5[] = [];
  const parentOf = new Map<TreeNode, TreeNode>();
  let depthOf = new Map<TreeNode, number>([[root, 0]]);
  for (const node of walk(root)) {
    const depth = depthOf.get(node)!;
    if (depth > LIMITS.DEPTH_MAX.value) throw limitError('DEPTH_MAX', `${showEntry(node)}: directory levels`, depth);
    checkEntry(node, node === root);
    for (const c of node.children ?? []) {
      parentOf.set(c, node);
      depthOf.set(c, depth + 1);
    }
    const inode = node.linkTo ?? node;
    let xattrs: Buffer;
    try {
      xattrs = v5.encodeXattrs(inode.xattrs.map((x) => ({ name: x.name, value: x.value })));
    } catch (e) {
      if (e instanceof NydusError) throw new NydusError(e.code, `${showEntry(node)}: ${e.message}`, { cause: e });
      throw e;
    }
    order.push({ node, inode, parent: parentOf.get(node), index: index.get(node)!, offset: 0, xattrs });
  }
  depthOf = new Map();

  // Digests, children before parents: files hash their chunk digests, directories their
  // children's digests, symlinks their target; other inodes hash nothing.
  const digest = new Map<TreeNode, Buffer>();
  const digestOf = (node: TreeNode): Buffer => digest.get(node.linkTo ?? node)!;
  for (let i = order.length - 1; i >= 0; i--) {
    const { node, inode } = order[i];
    if (digest.has(inode)) continue;
    const type = inode.mode & S_IFMT;
    let parts: Buffer[] = [];
    if (type === S_IFDIR) parts = (node.children ?? []).map(digestOf);
    else if (type === S_IFREG) parts = (inode.chunks ?? []).map((r) => chunks[r.chunk].digest);
    else if (type === S_IFLNK) parts = [inode.target!];
    digest.set(inode, digester.digest(Buffer.concat(parts)));
  }

  // Offsets: the tables, then the records back to back (every size is a multiple of 8).
  const inodeTableSize = v5.inodeTableSize(entries);
  const prefetchIno = input.prefetch.map(inoOf);
  const prefetchSize = v5.prefetchTableSize(prefetchIno.length);
  const blobTable = input.blobs.map((b) => ({ readahead_offset: 0, readahead_size: 0, blob_id: b.blob_id }));
  const blobTableSize = v5.blobTableSize(blobTable);
  const extTable = input.blobs.map((b) => ({ chunk_count: b.chunk_count, features: b.features, uncompressed_size: b.uncompressed_size, compressed_size: b.compressed_size }));
  const prefetchOff = v5.SUPERBLOCK_SIZE + inodeTableSize;
  const blobOff = prefetchOff + prefetchSize;
  const extOff = blobOff + blobTableSize;
  let cursor = extOff + extTable.length * v5.EXT_BLOB_ENTRY_SIZE;
  let hasXattr = false;
  for (const r of order) {
    r.offset = cursor;
    const chunkCount = (r.inode.mode & S_IFMT) === S_IFREG ? (r.inode.chunks ?? []).length : 0;
    const symlink = r.inode.target?.length ?? 0;
    cursor += v5.INODE_SIZE + v5.align8(r.node === root ? 1 : r.node.name.length) + v5.align8(symlink) + r.xattrs.length + chunkCount * v5.CHUNK_INFO_SIZE;
    if (r.xattrs.length > 0) hasXattr = true;
  }
  // The inode table holds offset / 8 in a u32.
  if (cursor > 2 ** 32) throw new NydusError('SOURCE', `the RAFS v5 bootstrap would be ${cursor} bytes: its inode table addresses at most 4 GiB`);

  const buf = Buffer.alloc(cursor);
  let flags = input.flags;
  if (input.explicitUidGid) flags |= v5.SuperFlags.EXPLICIT_UID_GID;
  if (hasXattr) flags |= v5.SuperFlags.HAS_XATTR;
  v5.encodeSuperBlock({
    ...v5.newSuperBlock(),
    s_block_size: input.chunkSize, s_flags: flags, s_inodes_count: unique,
    s_inode_table_offset: v5.SUPERBLOCK_SIZE, s_inode_table_entries: entries,
    s_prefetch_table_offset: prefetchOff, s_prefetch_table_entries: prefetchIno.length,
    s_blob_table_offset: blobOff, s_blob_table_size: blobTableSize,
    s_extended_blob_table_offset: extOff, s_extended_blob_table_entries: extTable.length,
  }).copy(buf, 0);
  const slots = new Array<number>(entries).fill(0);
  for (const r of order) slots[r.index - 1] = r.offset / 8;
  v5.encodeInodeTable({ data: slots }).copy(buf, v5.SUPERBLOCK_SIZE);
  v5.encodePrefetchTable({ inodes: prefetchIno }).copy(buf, prefetchOff);
  v5.encodeBlobTable(blobTable).copy(buf, blobOff);
  v5.encodeExtBlobTable(extTable).copy(buf, extOff);

  const SLASH = Buffer.from('/');
  for (const r of order) {
    const { node, inode } = r;
    const type = inode.mode & S_IFMT;
    const refs = type === S_IFREG ? inode.chunks ?? [] : [];
    const kids = node.children ?? [];
    const size = type === S_IFDIR ? dirSize(node) : type === S_IFLNK ? inode.target!.length : inode.size;
    let iflags = 0;
    if (type === S_IFLNK) iflags |= v5.InodeFlags.SYMLINK;
    if (r.xattrs.length > 0) iflags |= v5.InodeFlags.XATTR;
    if (type === S_IFREG && input.hardlinkFlagged?.has(inode)) iflags |= v5.InodeFlags.HARDLINK;
    const name = node === root ? SLASH : node.name;
    let p = r.offset;
    v5.encodeInode({
      i_digest: digestOf(node),
      i_parent: r.parent ? inoOf(r.parent) : 0,
      i_ino: inoOf(node),
      i_uid: input.explicitUidGid ? inode.uid : 0,
      i_gid: input.explicitUidGid ? inode.gid : 0,
      i_projid: 0,
      i_mode: inode.mode,
      i_size: size,
      i_blocks: Math.ceil((size + xattrPairsSize(inode)) / 512),
      i_flags: iflags,
      i_nlink: type === S_IFDIR ? 2 + kids.filter((c) => (c.mode & S_IFMT) === S_IFDIR).length : inode.links,
      i_child_index: type === S_IFDIR ? childIndex.get(node)! : 0,
      i_child_count: type === S_IFDIR ? kids.length : refs.length,
      i_name_size: name.length,
      i_symlink_size: inode.target?.length ?? 0,
      i_rdev: inode.rdev,
      i_mtime_nsec: inode.mtimeNsec,
      i_mtime: inode.mtime,
    }).copy(buf, p);
    p += v5.INODE_SIZE;
    const names = v5.encodeInodeNames(type === S_IFLNK ? { name, symlink: inode.target! } : { name });
    names.copy(buf, p);
    p += names.length;
    r.xattrs.copy(buf, p);
    p += r.xattrs.length;
    for (const ref of refs) {
      const c = chunks[ref.chunk];
      v5.encodeChunkInfo({
        block_id: c.digest, blob_index: c.blobIndex, flags: c.flags, compressed_size: c.compressedSize,
        uncompressed_size: c.uncompressedSize, compressed_offset: c.compressedOffset,
        uncompressed_offset: c.uncompressedOffset, file_offset: ref.fileOffset, index: c.index, crc32: c.crc32,
      }).copy(buf, p);
      p += v5.CHUNK_INFO_SIZE;
    }
  }
  return buf;
}

/** A v6-shaped blob-table entry (what create and merge assemble) as the v5 tables keep it. */
export function v5Blob(e: bt.BlobEntry): V5Blob {
  return { blob_id: e.blob_id, chunk_count: e.chunk_count, features: e.features, uncompressed_size: e.uncompressed_size, compressed_size: e.compressed_size };
}

/**
 * What upstream's tar builder records differently in v5 inodes: i_rdev is u32::MAX except for
 * character and block devices and FIFOs (set here, on the tar layer's tree), and every name of a
 * hardlink group is flagged HARDLINK (returned: the regular files to flag).
 */
export function markTarInodesV5(root: TreeNode): Set<TreeNode> {
  const flagged = new Set<TreeNode>();
  for (const n of walk(root)) {
    const type = n.mode & S_IFMT;
    if (type !== S_IFCHR && type !== S_IFBLK && type !== S_IFIFO) n.rdev = 0xffff_ffff;
    if (n.linkTo) flagged.add(n).add(n.linkTo);
  }
  return flagged;
}
