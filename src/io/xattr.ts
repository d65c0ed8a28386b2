// Extended attributes by byte-string path through the project's small native addon.
import { createRequire } from 'node:module';

interface Native {
  llist(path: Buffer): Buffer;
  lget(path: Buffer, name: Buffer): Buffer;
  lset(path: Buffer, name: Buffer, value: Buffer): void;
}

const require = createRequire(import.meta.url);
// The addon sits in build/Release at the package root, two levels above both src/io and dist/io.
const native = require('../../build/Release/nydus_native.node') as Native;

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

export function setXattr(path: Buffer, name: Buffer, value: Buffer): void {
  native.lset(path, name, value);
}
