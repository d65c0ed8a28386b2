// Bootstraps built in code for the hostile-input tests: a tree of TreeNodes planned and emitted
// by the real bootstrap writer, then patched where a test needs bytes no builder writes.
import { planBootstrap } from '../../src/bootstrap/plan.js';
import { emitBootstrap } from '../../src/bootstrap/emit.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import type { ChunkInfo } from '../../src/read/model.js';
import { S_IFDIR, S_IFLNK, S_IFREG, type TreeNode } from '../../src/tree/node.js';

const base = (name: string | Buffer, mode: number): TreeNode => ({
  name: Buffer.isBuffer(name) ? name : Buffer.from(name), path: Buffer.from('/'), mode, uid: 0, gid: 0,
  mtime: 0, mtimeNsec: 0, size: 0, rdev: 0, xattrs: [], links: 1,
});

/** A directory; children are sorted here, as a source leaves them. */
export function dir(name: string | Buffer, children: TreeNode[] = []): TreeNode {
  return { ...base(name, S_IFDIR | 0o755), children: [...children].sort((a, b) => Buffer.compare(a.name, b.name)) };
}

export function file(name: string | Buffer, size = 0, chunks: TreeNode['chunks'] = []): TreeNode {
  return { ...base(name, S_IFREG | 0o644), size, chunks };
}

export function symlink(name: string | Buffer, target: string): TreeNode {
  return { ...base(name, S_IFLNK | 0o777), target: Buffer.from(target), size: target.length };
}

/** Another name of `first` (a hardlink). */
export function link(name: string | Buffer, first: TreeNode): TreeNode {
  first.links++;
  return { ...base(name, first.mode), size: first.size, linkTo: first };
}

export const CHUNK_SIZE = 0x1000;

/** One blob entry for a crafted image whose chunks need a blob (none written). */
export function blobEntry(id: string, uncompressedSize: number): bt.BlobEntry {
  return {
    blob_id: id, blob_index: 0, chunk_size: CHUNK_SIZE, chunk_count: 1, compression_algo: 0, digest_algo: 0,
    features: bt.FEATURE_ALIGNED, compressed_size: uncompressedSize, uncompressed_size: uncompressedSize, blob_toc_size: 0,
    ci_compressor: 0, ci_offset: 0, ci_compressed_size: 0, ci_uncompressed_size: 0,
    blob_toc_digest: Buffer.alloc(32), blob_meta_digest: Buffer.alloc(32), blob_meta_size: 0,
    cipher_iv: Buffer.alloc(8), cipher_algo: 0,
  };
}

/** One uncompressed chunk of CHUNK_SIZE bytes at offset 0 of blob 0. */
export function oneChunk(): ChunkInfo {
  return {
    blobIndex: 0, index: 0, digest: Buffer.alloc(32, 1), flags: 0, compressedOffset: 0, compressedSize: CHUNK_SIZE,
    uncompressedOffset: 0, uncompressedSize: CHUNK_SIZE, fileOffset: 0, crc32: 0,
  };
}

/** The RAFS v6 bootstrap of `root` (blake3, no compression), as create would write it, but past the limits create enforces. */
export function buildV6(root: TreeNode, o: { chunks?: ChunkInfo[]; blobs?: bt.BlobEntry[] } = {}): Buffer {
  const plan = planBootstrap(root, 4096, { unchecked: true });
  return emitBootstrap({
    plan, chunks: o.chunks ?? [], blobs: o.blobs ?? [], chunkSize: CHUNK_SIZE, blockSize: 4096, explicitUidGid: true, prefetch: [],
    flags: ext.FLAG_COMPRESSION_NONE | ext.FLAG_HASH_BLAKE3 | ext.FLAG_ENCRYPTION_NONE,
  });
}

/** Replaces the only occurrence of `from` in `buf` with `to` (same length). */
export function patchBytes(buf: Buffer, from: string | Buffer, to: string | Buffer): Buffer {
  const a = Buffer.isBuffer(from) ? from : Buffer.from(from);
  const b = Buffer.isBuffer(to) ? to : Buffer.from(to);
  if (a.length !== b.length) throw new Error('patchBytes: lengths differ');
  const at = buf.indexOf(a);
  if (at < 0 || buf.indexOf(a, at + 1) >= 0) throw new Error(`patchBytes: ${a.toString('latin1')} is not in the buffer exactly once`);
  const out = Buffer.from(buf);
  b.copy(out, at);
  return out;
}
