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

/** The LstatResult at o[k..k+13) (lstatInto's layout). */
export function lstatAt(o: Float64Array, k: number): LstatResult {
  return {
    mode: o[k], uid: o[k + 1], gid: o[k + 2], size: o[k + 3], mtime: o[k + 4], mtimeNsec: o[k + 5], nlink: o[k + 6],
    rdevMajor: o[k + 7], rdevMinor: o[k + 8], key: o[k + 6] > 1 ? `${o[k + 9]}:${o[k + 10]}:${o[k + 11]}:${o[k + 12]}` : undefined,
  };
}

/** lstat(2) by byte path, filling one shared array: no BigInt objects per call. */
export function lstatFast(path: Buffer): LstatResult {
  native.lstatInto(path, statOut);
  return lstatAt(statOut, 0);
}

/** Numbers per entry of scanDir's stats. */
export const SCAN_FIELDS = 14;

/**
 * One directory's entries, each lstat'ed and its xattr list sized, in one native call, in name
 * order (bytewise, as Buffer.compare orders them): names (views of one buffer) and stats (SCAN_FIELDS per entry: lstatAt's 13, then the
 * xattr list's size; a negative first number where either failed: ask again by path).
 */
export function scanDir(dir: Buffer): { names: Buffer[]; stats: Float64Array } {
  const [all, stats] = native.scanDir(dir);
  const names: Buffer[] = [];
  let start = 0;
  while (start < all.length) {
    const end = all.indexOf(0, start);
    names.push(all.subarray(start, end));
    start = end + 1;
  }
  return { names, stats };
}

/** Grows a pipe's buffer (best effort): fewer, larger reads of a FIFO. Returns the new size or -1. */
export function setPipeSize(fd: number, size: number): number {
  return native.setPipeSize(fd, size);
}

