// The project's xattr addon, loaded for tests: lxattr calls on byte-string paths, so names that
// are not UTF-8 work. Built by node-gyp into build/Release.
import { createRequire } from 'node:module';

export interface XattrAddon {
  /** NUL-separated attribute names of the path itself (symlinks not followed). */
  llist(path: Buffer): Buffer;
  lget(path: Buffer, name: Buffer): Buffer;
  lset(path: Buffer, name: Buffer, value: Buffer): void;
}

const require = createRequire(import.meta.url);
export const xattr = require('../../build/Release/nydus_native.node') as XattrAddon;

/** Every xattr of a path as name → value, names as the kernel reports them. */
export function readXattrs(path: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const list = xattr.llist(path);
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    if (list[i] !== 0) continue;
    if (i > start) {
      const name = list.subarray(start, i);
      out.set(name.toString('latin1'), xattr.lget(path, Buffer.from(name)));
    }
    start = i + 1;
  }
  return out;
}
