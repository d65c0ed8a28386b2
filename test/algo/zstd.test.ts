// zstd chunks follow upstream's rule: compress with room for any frame (the Rust zstd crate's
// bulk::compress sizes its output by ZSTD_compressBound) and keep the frame whenever it is
// strictly smaller than the chunk. Asking zstd to fit in one byte less than the chunk is not the
// same: it gives up on some small chunks whose frame would have fit.
import { describe, expect, it } from 'vitest';
import { COMPRESSORS } from '../../src/algo/index.js';
import { prng } from '../helpers/tree.js';

const zstd = COMPRESSORS.find((c) => c.name === 'zstd')!;

describe('zstd compressInto', () => {
  it('keeps a frame one byte smaller than the chunk, which zstd cannot write into a buffer of chunk - 1 bytes', () => {
    // 73 bytes whose level-3 frame is 72 bytes.
    const src = Buffer.from('This directory contains rules for xkb: see the README. This directory con');
    expect(src.length).toBe(73);
    const frame = zstd.compress(src);
    expect(frame.byteLength).toBe(72);
    const dst = new Uint8Array(src.length - 1);
    expect(zstd.compressInto(dst, src)).toBe(72);
    expect(Buffer.from(dst).equals(Buffer.from(frame))).toBe(true);
    expect(Buffer.from(zstd.decompress(dst, src.length)).equals(src)).toBe(true);
  });

  it('says -1 for data that does not shrink, and writes the same frame as compress() when it does', () => {
    const noise = prng(5, 1 << 20);
    expect(zstd.compressInto(new Uint8Array(noise.length - 1), noise)).toBe(-1);
    const text = Buffer.from('a line of text that repeats\n'.repeat(40000));
    const dst = new Uint8Array(text.length - 1);
    const n = zstd.compressInto(dst, text);
    expect(n).toBeGreaterThan(0);
    expect(Buffer.from(dst.subarray(0, n)).equals(Buffer.from(zstd.compress(text)))).toBe(true);
  });

  it('decompresses no further than the size the chunk info claims (a 2 KiB frame of 1 GiB is refused, not allocated)', () => {
    const zeros = Buffer.alloc(64 << 20);
    const frame = zstd.compress(zeros);
    expect(frame.byteLength).toBeLessThan(4096);
    // A frame declaring 16 times what it may hold: the old decompress allocated what it declared.
    const bomb = Buffer.concat(Array.from({ length: 16 }, () => Buffer.from(frame)));
    const before = process.memoryUsage().rss;
    expect(() => zstd.decompress(bomb, 1 << 20)).toThrow(/too small/);
    expect(process.memoryUsage().rss - before).toBeLessThan(256 << 20);
    expect(zstd.decompress(frame, 64 << 20).byteLength).toBe(64 << 20);
  });
});
