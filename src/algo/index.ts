// One table of compressors and one of digesters: parsing, help text, bit flags and codecs all read it.
// The codecs' native modules load on first use: a command that only parses flags, or a build
// with one compressor, does not pay for the others.
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { native } from '../io/native.js';
import { inflateMemberPrefix } from '../format/stargz/gzip.js';

const require = createRequire(import.meta.url);
interface ZstdBinding {
  CCtx: new () => { compress(dst: Uint8Array, src: Uint8Array, level: number): number };
  DCtx: new () => { decompress(dst: Uint8Array, src: Uint8Array): number };
}
let zstdModules: { binding: ZstdBinding; compress: (d: Uint8Array, o: { compressionLevel: number }) => Buffer } | undefined;
const zstd = () => (zstdModules ??= { binding: require('zstd-napi/binding') as ZstdBinding, compress: (require('zstd-napi') as { compress: never }).compress });
let blake3Fn: ((d: Uint8Array) => Buffer) | undefined;
const blake3 = (d: Uint8Array): Buffer => (blake3Fn ??= (require('@napi-rs/blake-hash') as { blake3: (d: Uint8Array) => Buffer }).blake3)(d);
// Decompression only: blocks are written by our own encoder in the native addon.
let lz4Module: { uncompressSync(data: Uint8Array): Buffer } | undefined;
const lz4 = () => (lz4Module ??= require('lz4-napi') as { uncompressSync(data: Uint8Array): Buffer });

export interface Compressor {
  name: 'none' | 'lz4_block' | 'gzip' | 'zstd';
  /** compress::Algorithm: blob table, blob.meta header. */
  id: number;
  /** RAFS superblock flag bit. */
  superFlag: number;
  /** rafs.blob.toc entry flag bit (0 = cannot appear in a TOC). */
  tocFlag: number;
  /** Compresses one chunk; the caller keeps the result only if it is smaller. */
  compress(data: Uint8Array): Uint8Array;
  /**
   * Compresses into `dst` and returns the bytes written, or -1 when the result does not fit in
   * dst (give dst one byte less than the input to get "only if strictly smaller").
   */
  compressInto(dst: Uint8Array, src: Uint8Array): number;
  /** Decompresses one chunk whose uncompressed size is known from chunk info. */
  decompress(data: Uint8Array, size: number): Uint8Array;
}

const ZSTD_LEVEL = 3;

let zstdDctx: InstanceType<ZstdBinding['DCtx']> | undefined;

/**
 * Decompresses into a buffer of the size the chunk info claims: a hostile frame that would grow
 * past it fails ("Destination buffer is too small") instead of allocating what it declares.
 */
function zstdDecompressBounded(src: Uint8Array, size: number): Uint8Array {
  zstdDctx ??= new (zstd().binding.DCtx)();
  const dst = Buffer.allocUnsafe(size);
  return dst.subarray(0, zstdDctx.decompress(dst, src));
}

/** LZ4_COMPRESSBOUND: the largest block n bytes can become. */
const lz4Bound = (n: number) => n + Math.floor(n / 255) + 16;

let zstdCtx: InstanceType<ZstdBinding['CCtx']> | undefined;
let zstdScratch = new Uint8Array(0);

/** ZSTD_COMPRESSBOUND: the largest frame n bytes can become. */
const zstdBound = (n: number) => n + (n >>> 8) + (n < 128 << 10 ? ((128 << 10) - n) >>> 11 : 0);

/**
 * zstd into the caller's buffer through a scratch buffer that always fits the frame (one context
 * and one scratch per thread): most chunks of a real tree (compressed files) do not shrink, and
 * letting zstd fail on a too-small dst costs a thrown exception per chunk.
 */
function zstdInto(dst: Uint8Array, src: Uint8Array): number {
  zstdCtx ??= new (zstd().binding.CCtx)();
  const bound = zstdBound(src.byteLength);
  if (zstdScratch.byteLength < bound) zstdScratch = new Uint8Array(Math.max(bound, 1 << 20));
  const n = zstdCtx.compress(zstdScratch, src, ZSTD_LEVEL);
  if (n > dst.byteLength) return -1;
  dst.set(zstdScratch.subarray(0, n));
  return n;
}

export const COMPRESSORS: readonly Compressor[] = [
  {
    name: 'none', id: 0, superFlag: 0x1, tocFlag: 0x1,
    compress: (d) => d,
    compressInto: () => -1,
    decompress: (d) => d,
  },
  {
    name: 'lz4_block', id: 1, superFlag: 0x2, tocFlag: 0x4,
    // RAFS stores the bare block. The addon writes it straight into the caller's buffer; lz4-napi's
    // encoder allocated a buffer per chunk, which the workers' GC left piling up (650 MB peak RSS).
    compress: (d) => {
      const dst = new Uint8Array(lz4Bound(d.byteLength));
      return dst.subarray(0, native.lz4CompressInto(dst, d));
    },
    compressInto: (dst, src) => native.lz4CompressInto(dst, src),
    decompress: (d, size) => {
      const framed = Buffer.allocUnsafe(d.byteLength + 4);
      framed.writeUInt32LE(size, 0);
      framed.set(d, 4);
      return lz4().uncompressSync(framed);
    },
  },
  {
    name: 'gzip', id: 2, superFlag: 0x40, tocFlag: 0,
    compress: () => { throw new Error('gzip chunks are only produced by *-ref conversions'); },
    compressInto: () => { throw new Error('gzip chunks are only produced by *-ref conversions'); },
    // One eStargz gzip member per chunk: its first `size` bytes (the member may go on past them).
    decompress: (d, size) => inflateMemberPrefix(Buffer.from(d.buffer, d.byteOffset, d.byteLength), size, 'gzip chunk'),
  },
  {
    name: 'zstd', id: 3, superFlag: 0x80, tocFlag: 0x2,
    compress: (d) => zstd().compress(d, { compressionLevel: ZSTD_LEVEL }),
    compressInto: zstdInto,
    decompress: zstdDecompressBounded,
  },
];

export interface Digester {
  name: 'blake3' | 'sha256';
  /** blob table digest_algo. */
  id: number;
  /** RAFS superblock flag bit. */
  superFlag: number;
  digest(data: Uint8Array): Buffer;
}

export const DIGESTERS: readonly Digester[] = [
  { name: 'blake3', id: 0, superFlag: 0x4, digest: (d) => blake3(d) },
  { name: 'sha256', id: 1, superFlag: 0x8, digest: (d) => createHash('sha256').update(d).digest() },
];

export type CompressorName = Compressor['name'];
export type DigesterName = Digester['name'];

/** Compressors a user may choose for a native build (gzip is only for *-ref). */
export const BUILD_COMPRESSORS = COMPRESSORS.filter((c) => c.name !== 'gzip').map((c) => c.name);
export const DIGESTER_NAMES = DIGESTERS.map((d) => d.name);

export function compressorByName(name: string): Compressor | undefined {
  return COMPRESSORS.find((c) => c.name === name);
}
export function compressorById(id: number): Compressor | undefined {
  return COMPRESSORS.find((c) => c.id === id);
}
export function compressorByFlags(flags: number): Compressor | undefined {
  const found = COMPRESSORS.filter((c) => (flags & c.superFlag) !== 0);
  return found.length === 1 ? found[0] : undefined;
}
export function compressorByTocFlag(flag: number): Compressor | undefined {
  return COMPRESSORS.find((c) => c.tocFlag !== 0 && c.tocFlag === flag);
}
export function digesterByName(name: string): Digester | undefined {
  return DIGESTERS.find((d) => d.name === name);
}
export function digesterById(id: number): Digester | undefined {
  return DIGESTERS.find((d) => d.id === id);
}
export function digesterByFlags(flags: number): Digester | undefined {
  const found = DIGESTERS.filter((d) => (flags & d.superFlag) !== 0);
  return found.length === 1 ? found[0] : undefined;
}
