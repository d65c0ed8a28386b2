// The project's small native addon (src/native, built by node-gyp into build/Release): xattrs,
// lstat and pipe sizes by the syscalls Node lacks, and LZ4 block compression into a buffer.
import { createRequire } from 'node:module';

export interface Native {
  llist(path: Buffer): Buffer;
  lget(path: Buffer, name: Buffer): Buffer;
  lset(path: Buffer, name: Buffer, value: Buffer): void;
  lstatInto(path: Buffer, out: Float64Array): void;
  setPipeSize(fd: number, size: number): number;
  /**
   * A directory's entries in name order (bytewise, as Buffer.compare): names NUL-terminated back to back, and per entry
   * lstatInto's 13 numbers then its xattr list's size; stats[14 * i] < 0 (-errno) where the
   * entry's lstat or xattr list failed.
   */
  scanDir(dir: Buffer): [Buffer, Float64Array];
  /** A bare LZ4 block of src in dst; its size, or -1 when it does not fit in dst. */
  lz4CompressInto(dst: Uint8Array, src: Uint8Array): number;
}

const require = createRequire(import.meta.url);
// The addon sits in build/Release at the package root, two levels above both src/io and dist/io.
export const native = require('../../build/Release/nydus_native.node') as Native;
