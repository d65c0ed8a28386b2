// The bootstrap's chunk table is sorted by digest bytes, then blob index, and entries equal in
// both keep first-use order (rafs-v6.md §3.4). emit sorts 64-bit keys (five digest bytes and the
// slot) natively and orders runs of equal five bytes by the full comparison: digests built here
// share long prefixes, repeat across blobs and come in every order, so both paths are held
// against a plain comparator sort.
import { describe, expect, it } from 'vitest';
import * as ci from '../../src/format/rafs/chunk-info.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import type { ChunkInfo } from '../../src/read/model.js';
import { CHUNK_SIZE, blobEntry, buildV6, dir, file } from '../read/craft.js';

/** A chunk of blob `blob` at position `index`, whose digest is `digest`. */
function chunk(digest: Buffer, blob: number, index: number): ChunkInfo {
  return {
    blobIndex: blob, index, digest, flags: 0, compressedOffset: index * CHUNK_SIZE, compressedSize: CHUNK_SIZE,
    uncompressedOffset: index * CHUNK_SIZE, uncompressedSize: CHUNK_SIZE, fileOffset: 0, crc32: index,
  };
}

/** The chunk table's entries, in table order. */
function table(boot: Buffer): ci.ChunkInfoEntry[] {
  const e = ext.decode(boot);
  const out: ci.ChunkInfoEntry[] = [];
  for (let off = e.chunk_table_offset; off < e.chunk_table_offset + e.chunk_table_size; off += ci.SIZE) out.push(ci.decode(boot, off));
  return out;
}

describe('chunk table order', () => {
  it('is digest bytes, then blob index, then first use, whatever the digests share', () => {
    // Deterministic bytes: a few digests that differ only past byte 5 (in descending order of
    // first use), one equal in two blobs (blob 1 used first), and many random-looking ones.
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    const digests: Array<[Buffer, number]> = [];
    const prefix = Buffer.from([9, 8, 7, 6, 5]);
    for (let k = 5; k >= 0; k--) digests.push([Buffer.concat([prefix, Buffer.alloc(27, k)]), 0]);
    const shared = Buffer.alloc(32, 0x42);
    digests.push([shared, 1], [shared, 0]);
    for (let k = 0; k < 3000; k++) digests.push([Buffer.from(Array.from({ length: 32 }, () => (k % 7 === 0 ? 0 : rand()))), k % 2]);
    const counts = [0, 0];
    const chunks = digests.map(([d, blob]) => chunk(d, blob, counts[blob]++));
    // One file per chunk, in the order the chunks were made: first use is chunk order.
    const files = chunks.map((_, i) => file(`f${String(i).padStart(5, '0')}`, CHUNK_SIZE, [{ chunk: i, fileOffset: 0 }]));
    const boot = buildV6(dir('/', files), {
      chunks,
      blobs: [0, 1].map((b) => ({ ...blobEntry(String(b).repeat(64), counts[b] * CHUNK_SIZE), blob_index: b, chunk_count: counts[b] })),
    });
    const expected = chunks.map((c, i) => ({ c, i })).sort((a, b) => Buffer.compare(a.c.digest, b.c.digest) || a.c.blobIndex - b.c.blobIndex || a.i - b.i);
    const got = table(boot);
    expect(got.length).toBe(chunks.length);
    expect(got.map((e) => `${e.digest.toString('hex')}/${e.blob_index}/${e.index}`)).toEqual(expected.map(({ c }) => `${c.digest.toString('hex')}/${c.blobIndex}/${c.index}`));
    // The shared digest: blob 0's entry first, though blob 1's was used first.
    const at = got.findIndex((e) => e.digest.equals(shared));
    expect([got[at].blob_index, got[at + 1].blob_index]).toEqual([0, 1]);
  });
});
