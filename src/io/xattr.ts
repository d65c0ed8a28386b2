// Extended attributes and lstat by byte-string path through the project's small native addon.
import { native } from './native.js';

/** The xattrs of a path (not following a final symlink), sorted by name. */
export function readXattrs(path: Buffer): Array<{ name: Buffer; value: Buffer }> {
  const list = native.llist(path);
  if (list.length === 0) return [];
  const out: Array<{ name: Buffer; value: Buffer }> = [];
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    if (list[i] !== 0) continue;
    if (i > start) {
      const name = Buffer.from(list.subarray(start, i));
      try {
        out.push({ name, value: native.lget(path, name) });
      } catch (e) {
        // Removed between list and get: nothing to record.
        if ((e as NodeJS.ErrnoException).code !== 'ENODATA') throw e;
      }
    }
    start = i + 1;
  }
  return out.sort((a, b) => Buffer.compare(a.name, b.name));
}

export interface LstatResult {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  mtimeNsec: number;
  nlink: number;
  rdevMajor: number;
  rdevMinor: number;
  /** Device and inode number, exact, as one string key: only when nlink > 1 (a possible hardlink). */
  key?: string;
}

const statOut = new Float64Array(13);

/** lstat(2) by byte path, filling one shared array: no BigInt objects per call. */
export function lstatFast(path: Buffer): LstatResult {
  native.lstatInto(path, statOut);
  const o = statOut;
  return {
    mode: o[0], uid: o[1], gid: o[2], size: o[3], mtime: o[4], mtimeNsec: o[5], nlink: o[6],
    rdevMajor: o[7], rdevMinor: o[8], key: o[6] > 1 ? `${o[9]}:${o[10]}:${o[11]}:${o[12]}` : undefined,
  };
}

/** Grows a pipe's buffer (best effort): fewer, larger reads of a FIFO. Returns the new size or -1. */
export function setPipeSize(fd: number, size: number): number {
  return native.setPipeSize(fd, size);
}

