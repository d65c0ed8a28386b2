// The bootstrap planner and emitter refuse, naming the entry and the limit, what no source of
// ours can hand them today but a merge, a plugin or a new source could: the limits no CLI input
// reaches cheaply (an xattr name past 255 bytes, 255 blobs, a blob of 2^24 + 1 chunks).
import { describe, expect, it } from 'vitest';
import { planBootstrap } from '../../src/bootstrap/plan.js';
import { emitBootstrap } from '../../src/bootstrap/emit.js';
import { NydusError } from '../../src/errors.js';
import type { TreeNode } from '../../src/tree/node.js';
import type { BlobEntry } from '../../src/format/rafs/blob-table.js';

function node(path: string, mode: number, extra: Partial<TreeNode> = {}): TreeNode {
  const name = path === '/' ? '' : path.slice(path.lastIndexOf('/') + 1);
  return {
    name: Buffer.from(name), path: Buffer.from(path), mode, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0,
    size: 0, rdev: 0, xattrs: [], links: 1, ...extra,
  };
}

function tree(...kids: TreeNode[]): TreeNode {
  return node('/', 0o40755, { children: kids });
}

function refusal(fn: () => unknown): NydusError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    expect((e as Error).message.split('\n')).toHaveLength(1);
    return e as NydusError;
  }
  throw new Error('expected a refusal');
}

function blob(i: number, chunkCount = 1): BlobEntry {
  return {
    blob_id: `b${i}`, blob_index: i, chunk_size: 0x100000, chunk_count: chunkCount, compression_algo: 0, digest_algo: 0,
    features: 0, compressed_size: 4096, uncompressed_size: 4096, blob_toc_size: 0, ci_compressor: 0, ci_offset: 0,
    ci_compressed_size: 0, ci_uncompressed_size: 0, blob_toc_digest: Buffer.alloc(32), blob_meta_digest: Buffer.alloc(32),
    blob_meta_size: 0, cipher_iv: Buffer.alloc(8), cipher_algo: 0,
  };
}

describe('planner and emitter limits', () => {
  it('XATTR_NAME_MAX: an xattr name of 300 bytes, named with its entry', () => {
    const f = node('/dir/f', 0o100644, { xattrs: [{ name: Buffer.from(`user.${'k'.repeat(295)}`), value: Buffer.from('v') }] });
    const e = refusal(() => planBootstrap(tree(node('/dir', 0o40755, { children: [f] })), 4096));
    expect(e.exit).toBe(1);
    expect(e.message).toMatch(/^\/dir\/f: xattr name .* exceeds XATTR_NAME_MAX \(255\)/);
  });

  it('an xattr namespace EROFS has no prefix for is refused with its entry, not as a bare format error', () => {
    const f = node('/g', 0o100644, { xattrs: [{ name: Buffer.from('os2.x'), value: Buffer.from('v') }] });
    expect(refusal(() => planBootstrap(tree(f), 4096)).message).toMatch(/^\/g: /);
  });

  it('a name with "/" or ".." is not an entry', () => {
    expect(refusal(() => planBootstrap(tree(node('/a/b', 0o100644, { name: Buffer.from('a/b') })), 4096)).message).toMatch(/"\/"/);
    expect(refusal(() => planBootstrap(tree(node('/..', 0o100644)), 4096)).message).toMatch(/\.\./);
  });

  it('BLOBS_MAX: 255 blobs', () => {
    const plan = planBootstrap(tree(), 4096);
    const blobs = Array.from({ length: 255 }, (_, i) => blob(i));
    const e = refusal(() => emitBootstrap({ plan, chunks: [], blobs, flags: 0, chunkSize: 0x100000, blockSize: 4096, explicitUidGid: true, prefetch: [] }));
    expect(e.message).toMatch(/255 exceeds BLOBS_MAX \(254\)/);
  });

  it('BLOB_CHUNKS_MAX: a blob of 2^24 + 1 chunks', () => {
    const plan = planBootstrap(tree(), 4096);
    const e = refusal(() => emitBootstrap({ plan, chunks: [], blobs: [blob(0, 2 ** 24 + 1)], flags: 0, chunkSize: 0x100000, blockSize: 4096, explicitUidGid: true, prefetch: [] }));
    expect(e.message).toMatch(/blob b0: chunks: 16777217 exceeds BLOB_CHUNKS_MAX/);
  });

  it('a blob size that is not whole blocks (merge copies it from a hostile layer) is a FORMAT error, not exit 70', () => {
    const plan = planBootstrap(tree(), 512);
    const e = refusal(() => emitBootstrap({ plan, chunks: [], blobs: [{ ...blob(0), uncompressed_size: 34305 }], flags: 0, chunkSize: 0x100000, blockSize: 512, explicitUidGid: true, prefetch: [] }));
    expect(e.code).toBe('FORMAT');
    expect(e.exit).toBe(1);
    expect(e.message).toMatch(/blob_table\[0\]\.uncompressed_size = 34305: .* whole, non-zero number of 512-byte blocks/);
  });
});

describe('inode fields that do not fit', () => {
  it('a uid past 32 bits or a negative mtime is refused with its entry, not wrapped or "value out of range"', () => {
    expect(refusal(() => planBootstrap(tree(node('/u', 0o100644, { uid: 2 ** 33 })), 4096)).message).toMatch(/^\/u: uid 8589934592 does not fit/);
    expect(refusal(() => planBootstrap(tree(node('/m', 0o100644, { mtime: -5 })), 4096)).message).toMatch(/^\/m: mtime -5 does not fit/);
  });
});
