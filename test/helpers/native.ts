// The project's native addon for tests (src/io/native.ts loads it): lxattr calls on byte-string
// paths, so names that are not UTF-8 work.
import { native } from '../../src/io/native.js';
import { readXattrs as readSorted } from '../../src/io/xattr.js';

export const xattr = native;

/** Every xattr of a path as name → value, names (latin1 keys) as the kernel reports them. */
export function readXattrs(path: Buffer): Map<string, Buffer> {
  return new Map(readSorted(path).map((x) => [x.name.toString('latin1'), x.value]));
}
