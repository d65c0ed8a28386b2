// Our LZ4 block encoder (src/native/lz4.c) judged by independent decoders: lz4-napi's
// (lz4_flex) and a strict one here that enforces the end-of-block rules LZ4's C decoder
// enforces must give back every input byte for byte, across the block format's edge cases:
// inputs shorter than the 13 bytes a match needs, literal and match lengths at the 15 and
// 15+255k boundaries, distances near 64 KiB, the switch between the encoder's small-input
// (16-bit table) and large-input variants just above 64 KiB, destinations cut to the exact
// block size (the encoder's wide copies must never write past them), incompressible data and
// whole real files.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { COMPRESSORS } from '../../src/algo/index.js';
import { prng } from '../helpers/tree.js';

const require = createRequire(import.meta.url);
const lz4napi = require('lz4-napi') as { uncompressSync(d: Uint8Array): Buffer; compressSync(d: Buffer): Buffer };
const lz4 = COMPRESSORS.find((c) => c.name === 'lz4_block')!;

/** Decoded by lz4-napi, which wants the block behind a u32 length. */
function decode(block: Uint8Array, size: number): Buffer {
  const framed = Buffer.alloc(block.byteLength + 4);
  framed.writeUInt32LE(size, 0);
  framed.set(block, 4);
  return lz4napi.uncompressSync(framed);
}

/**
 * A strict decoder of our own for the block format's end rules, which lz4_flex does not check
 * but LZ4's C decoder (upstream nydusd's) does: the last sequence is literals only, the last 5
 * bytes are literals, and no match starts within the last 12 bytes.
 */
function strictDecode(block: Uint8Array, size: number): Buffer {
  const out = Buffer.alloc(size);
  let ip = 0;
  let op = 0;
  const len = (base: number) => {
    let n = base;
    if (base === 15) {
      let b: number;
      do {
        b = block[ip++]!;
        n += b;
      } while (b === 255);
    }
    return n;
  };
  for (;;) {
    const token = block[ip++]!;
    const lit = len(token >> 4);
    out.set(block.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === block.length) break;
    if (ip > block.length) throw new Error('literals run past the block');
    const offset = block[ip]! | (block[ip + 1]! << 8);
    ip += 2;
    const ml = len(token & 15) + 4;
    if (offset === 0 || offset > op) throw new Error(`bad offset ${offset} at output ${op}`);
    if (op > size - 12) throw new Error(`a match starts at ${op}, within the last 12 bytes of ${size}`);
    if (op + ml > size - 5) throw new Error(`a match ends at ${op + ml}, within the last 5 bytes of ${size}`);
    for (let k = 0; k < ml; k++, op++) out[op] = out[op - offset]!;
  }
  if (op !== size) throw new Error(`decoded ${op} bytes, expected ${size}`);
  return out;
}

function roundTrip(src: Buffer): number {
  const block = lz4.compress(src);
  expect(decode(block, src.length).equals(src), `input of ${src.length} bytes`).toBe(true);
  expect(strictDecode(block, src.length).equals(src), `input of ${src.length} bytes, strict`).toBe(true);
  // Our own reader path decodes it too.
  expect(Buffer.from(lz4.decompress(block, src.length)).equals(src)).toBe(true);
  return block.byteLength;
}

const random = (n: number, seed: number) => prng(seed, n);

describe('lz4_block encoder', () => {
  it('round-trips short inputs of every length up to 300 bytes', () => {
    for (let n = 0; n <= 300; n++) {
      roundTrip(random(n, n + 1));
      roundTrip(Buffer.alloc(n, 0x61));
      roundTrip(Buffer.from('abcabcabd'.repeat(n + 1).slice(0, n)));
    }
  });

  it('round-trips literal and match lengths at the 15 and 15+255k boundaries', () => {
    for (const k of [14, 15, 16, 18, 19, 20, 269, 270, 271, 273, 274, 524, 525, 529, 4000]) {
      roundTrip(Buffer.concat([random(k, k), Buffer.alloc(k, 1), random(20, k + 7)]));
      roundTrip(Buffer.concat([random(k, k), random(k, k), random(13, 3)]));
    }
  });

  it('round-trips distances up to and past 64 KiB, and chunk-sized inputs', () => {
    for (const gap of [65530, 65535, 65536, 70000]) {
      const head = random(64, gap);
      roundTrip(Buffer.concat([head, random(gap - 64, gap + 1), head, random(32, 9)]));
    }
    for (const n of [4096, 65536, 1 << 20, 3 << 20]) {
      roundTrip(random(n, n));
      roundTrip(Buffer.alloc(n));
      const mixed = random(n, n + 5);
      for (let i = 0; i < n; i += 1024) mixed.fill(i & 0xff, i, i + 512);
      roundTrip(mixed);
    }
  });

  it('round-trips every size around the 64 KiB switch between its two variants', () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n'.repeat(1300));
    for (let n = 65520; n <= 65570; n++) {
      roundTrip(random(n, n));
      roundTrip(Buffer.alloc(n));
      roundTrip(text.subarray(0, n));
      // A repeat 64 KiB back: within the window only at the far end of a small input.
      const far = random(n, n + 3);
      far.copy(far, n - 40, 0, 32);
      roundTrip(far);
    }
  });

  it('round-trips repeated short patterns of every period and sizes 1..64 of each', () => {
    for (let period = 1; period <= 20; period++) {
      const unit = random(period, period * 31);
      for (const n of [...Array.from({ length: 64 }, (_, i) => i + 1), 1000, 65536, 1 << 20]) {
        const src = Buffer.alloc(n);
        for (let i = 0; i < n; i++) src[i] = unit[i % period]!;
        roundTrip(src);
      }
    }
  });

  it('fits a destination of exactly the block size, writes nothing past it, and is repeatable', () => {
    const text = Buffer.from(readFileSync(new URL(import.meta.url)));
    const inputs: Buffer[] = [];
    for (const n of [13, 14, 20, 31, 64, 100, 1000, 4096, 65547, 65548, 70000, 1 << 20]) {
      inputs.push(Buffer.alloc(n), random(n, n + 11), Buffer.concat(Array(Math.ceil(n / text.length)).fill(text)).subarray(0, n));
      // Mostly noise with a few matches: the block ends within a few bytes of the input's size.
      const sparse = random(n, n + 13);
      for (let i = 64; i + 16 < n; i += 4096) sparse.copy(sparse, i, i - 64, i - 48);
      inputs.push(sparse);
    }
    for (const src of inputs) {
      const block = Buffer.from(lz4.compress(src));
      // Every short destination, and every one a little short of the block: each must give -1
      // without a byte written past it.
      const caps = new Set([block.length, ...Array.from({ length: 48 }, (_, k) => block.length - 1 - k), ...Array.from({ length: 64 }, (_, k) => k)]);
      for (const cap of caps) {
        if (cap < 0 || cap > block.length) continue;
        // dst is a view into a larger buffer whose bytes past it must stay untouched.
        const room = Buffer.alloc(cap + 64, 0xa5);
        const n = lz4.compressInto(room.subarray(0, cap), src);
        expect(room.subarray(cap).every((b) => b === 0xa5), `${src.length} bytes into ${cap}`).toBe(true);
        if (cap === block.length) expect(room.subarray(0, n).equals(block)).toBe(true);
        else expect(n).toBe(-1);
      }
      // Earlier contents of dst play no part.
      const dirty = random(block.length, 5);
      expect(lz4.compressInto(dirty, src)).toBe(block.length);
      expect(dirty.equals(block)).toBe(true);
    }
  });

  it('gives back every chunk of real files stored the way the build stores them', () => {
    // As the chunk workers call it: into one byte less than the chunk, raw when it does not fit.
    const roots = ['/usr/share/doc', '/usr/share/perl5', '/usr/share/zoneinfo', '/usr/share/i18n', '/usr/lib/x86_64-linux-gnu'];
    const files = roots.flatMap((dir) => {
      try {
        return readdirSync(dir, { recursive: true }).map((f) => join(dir, String(f)));
      } catch {
        return [];
      }
    }).filter((f) => { try { return statSync(f).isFile(); } catch { return false; } }).slice(0, 3000);
    expect(files.length).toBeGreaterThan(500);
    let compressed = 0;
    for (const f of files) {
      const data = readFileSync(f);
      for (let at = 0; at < data.length; at += 1 << 20) {
        const chunk = data.subarray(at, at + (1 << 20));
        if (chunk.length < 2) continue;
        const dst = new Uint8Array(chunk.length - 1);
        const n = lz4.compressInto(dst, chunk);
        if (n < 0) continue;
        compressed++;
        const block = dst.subarray(0, n);
        expect(decode(block, chunk.length).equals(chunk), f).toBe(true);
        expect(strictDecode(block, chunk.length).equals(chunk), f).toBe(true);
      }
    }
    expect(compressed).toBeGreaterThan(100);
  });

  it('compresses real files as well as lz4_flex does, and round-trips them', () => {
    const dir = '/usr/share/doc';
    const files = readdirSync(dir, { recursive: true }).map((f) => join(dir, String(f)))
      .filter((f) => { try { return statSync(f).isFile(); } catch { return false; } }).slice(0, 800);
    expect(files.length).toBeGreaterThan(50);
    let ours = 0;
    let theirs = 0;
    for (const f of files) {
      const b = readFileSync(f).subarray(0, 1 << 20);
      ours += roundTrip(b);
      theirs += lz4napi.compressSync(b).length - 4;
    }
    expect(ours).toBeLessThan(theirs * 1.05);
  });

  it('compressInto writes into the caller buffer and says -1 when the block would not fit', () => {
    const src = Buffer.from('hello hello hello hello hello hello hello hello');
    const size = lz4.compress(src).byteLength;
    expect(size).toBeLessThan(src.length);
    const dst = new Uint8Array(size);
    expect(lz4.compressInto(dst, src)).toBe(size);
    expect(decode(dst, src.length).equals(src)).toBe(true);
    expect(lz4.compressInto(new Uint8Array(size - 1), src)).toBe(-1);
    // Incompressible data does not fit in one byte less than itself.
    const noise = random(4096, 77);
    expect(lz4.compressInto(new Uint8Array(noise.length - 1), noise)).toBe(-1);
  });
});
