// The project's small native addon (src/native, built by node-gyp into build/Release): xattrs,
// lstat and pipe sizes by the syscalls Node lacks, LZ4 block compression into a buffer, and the
// chunk workers' file reads of a batch in one call.
import { createRequire } from 'node:module';

export interface Native {
  llist(path: Buffer): Buffer;
  lget(path: Buffer, name: Buffer): Buffer;
  lset(path: Buffer, name: Buffer, value: Buffer): void;
  lstatInto(path: Buffer, out: Float64Array): void;
  setPipeSize(fd: number, size: number): number;
  /** glibc's malloc_trim(0): every arena's free pages go back to the kernel; true when some did (false elsewhere). */
  mallocTrim(): boolean;
  /**
   * A directory's entries in name order (bytewise, as Buffer.compare): names NUL-terminated back to back, and per entry
   * (the first statMax only, when given) lstatInto's 13 numbers then its xattr list's size;
   * stats[14 * i] < 0 (-errno) where the entry's lstat or xattr list failed.
   */
  scanDir(dir: Buffer, statMax?: number): [Buffer, Float64Array];
  /** scanDir's numbers for the entries of dir named in names (NUL-terminated back to back). */
  statNames(dir: Buffer, names: Buffer): Float64Array;
  /** Starts a full collection in the background (V8 memory pressure, moderate). */
  memoryPressure(): void;
  /**
   * Reads from..n-1 of a batch's file reads (src/pipeline/workers/chunks.ts FileReads) into data;
   * n when all are done, else the index of the first read that failed, for Node's fs to redo.
   */
  readFilesInto(data: Uint8Array, spans: Float64Array, paths: Uint8Array, pathEnds: Uint32Array, fds: Int32Array, from: number): number;
  /** A bare LZ4 block of src in dst; its size, or -1 when it does not fit in dst. */
  lz4CompressInto(dst: Uint8Array, src: Uint8Array): number;
  /** A gzip inflater that reports deflate block boundaries (src/native/zran.c). */
  zranNew(): object;
  /** Inflates input into out; points get [kind, inPos, outPos, bits | prevByte << 8] per boundary; res [inUsed, outUsed, points, between members]. */
  zranRun(handle: object, input: Uint8Array, out: Uint8Array, points: Float64Array, res: Float64Array): void;
  /** Raw inflate resumed at a boundary; res [inUsed, outUsed]. */
  zranExtract(input: Uint8Array, bits: number, prevByte: number, dict: Uint8Array, out: Uint8Array, res: Float64Array): void;
}

const require = createRequire(import.meta.url);
// The addon sits in build/Release at the package root, two levels above both src/io and dist/io.
export const native = require('../../build/Release/nydus_native.node') as Native;
