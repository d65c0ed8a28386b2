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

const statOut = new Float64Array(13);

/** lstat(2) by byte path into one shared array (lstatInto's 13 numbers), valid until the next call. */
export function lstatShared(path: Buffer): Float64Array {
  native.lstatInto(path, statOut);
  return statOut;
}

/**
 * The hardlink key (device and inode, exact) of the stat at o[k..k+13): only for a non-directory
 * with nlink > 1 (a directory's nlink counts its subdirectories, not hardlinks).
 */
export function linkKeyAt(o: Float64Array, k: number): string | undefined {
  return o[k + 6] > 1 && (o[k] & 0o170000) !== 0o040000 ? `${o[k + 9]}:${o[k + 10]}:${o[k + 11]}:${o[k + 12]}` : undefined;
}

/** Numbers per entry of scanDir's stats. */
export const SCAN_FIELDS = 14;

/**
 * One directory's entries in name order (bytewise, as Buffer.compare orders them), in one native
 * call: names (views of one buffer) and, for the first `statMax` (all by default), their stats
 * (SCAN_FIELDS per entry: lstatInto's 13, then the xattr list's size; a negative first number
 * where either failed: ask again by path). statNames states the rest.
 */
export function scanDir(dir: Buffer, statMax = 0xffff_ffff): { names: Buffer[]; stats: Float64Array } {
  const [all, stats] = native.scanDir(dir, statMax);
  const names: Buffer[] = [];
  let start = 0;
  while (start < all.length) {
    const end = all.indexOf(0, start);
    names.push(all.subarray(start, end));
    start = end + 1;
  }
  return { names, stats };
}

/**
 * scanDir's stats of names[from, to) of a directory it scanned (the names must be its views of
 * one buffer, as scanDir gives them).
 */
export function statNames(dir: Buffer, names: Buffer[], from: number, to: number): Float64Array {
  if (from >= to) return new Float64Array(0);
  const first = names[from];
  const last = names[to - 1];
  const all = Buffer.from(first.buffer, first.byteOffset, last.byteOffset + last.length + 1 - first.byteOffset);
  return native.statNames(dir, all);
}

/** Grows a pipe's buffer (best effort): fewer, larger reads of a FIFO. Returns the new size or -1. */
export function setPipeSize(fd: number, size: number): number {
  return native.setPipeSize(fd, size);
}

