// Inline extended attributes after an inode (rafs-v6.md §5). Shared xattrs are never used by RAFS.
import { formatError } from '../../errors.js';
import { alignUp, need } from '../util.js';

export const HEADER_SIZE = 12;
export const ENTRY_SIZE = 4;

/** Prefix table, matched in this order. An empty-suffix entry means the whole name is the prefix. */
const PREFIXES: ReadonlyArray<{ index: number; prefix: Buffer; exact: boolean }> = [
  { index: 1, prefix: Buffer.from('user.'), exact: false },
  { index: 2, prefix: Buffer.from('system.posix_acl_access'), exact: true },
  { index: 3, prefix: Buffer.from('system.posix_acl_default'), exact: true },
  { index: 4, prefix: Buffer.from('trusted.'), exact: false },
  { index: 6, prefix: Buffer.from('security.'), exact: false },
];

export interface XattrPair {
  name: Buffer;
  value: Buffer;
}

function split(name: Buffer): { index: number; suffix: Buffer } | undefined {
  for (const p of PREFIXES) {
    if (p.exact ? name.equals(p.prefix) : name.length > p.prefix.length && name.subarray(0, p.prefix.length).equals(p.prefix)) {
      return { index: p.index, suffix: name.subarray(p.prefix.length) };
    }
  }
  return undefined;
}

/** Whether RAFS v6 can store this xattr name. */

/** Byte size of the xattr area (header + entries), 0 when there are none. */
export function areaSize(xattrs: XattrPair[]): number {
  if (xattrs.length === 0) return 0;
  return HEADER_SIZE + xattrs.reduce((n, x) => n + alignUp(ENTRY_SIZE + (split(x.name)?.suffix.length ?? 0) + x.value.length, 4), 0);
}

/** i_xattr_icount for an area of `size` bytes. */
export const icount = (size: number) => (size === 0 ? 0 : (size - HEADER_SIZE) / 4 + 1);
export const sizeOfIcount = (count: number) => (count === 0 ? 0 : HEADER_SIZE + 4 * (count - 1));

/** Encodes xattrs (already sorted by the caller) into the inline area. */
const NONE = Buffer.alloc(0);

export function encode(xattrs: XattrPair[]): Buffer {
  if (xattrs.length === 0) return NONE;
  const out = Buffer.alloc(areaSize(xattrs));
  let off = HEADER_SIZE;
  for (const x of xattrs) {
    const s = split(x.name);
    if (!s) throw formatError('xattr', 'name', x.name.toString('latin1'), 'namespace not supported by RAFS v6 (user., trusted., security., system.posix_acl_*)');
    if (s.suffix.length > 255) throw formatError('xattr', 'e_name_len', s.suffix.length, 'name longer than 255 bytes');
    if (x.value.length > 65535) throw formatError('xattr', 'e_value_size', x.value.length, 'value longer than 65535 bytes');
    out.writeUInt8(s.suffix.length, off);
    out.writeUInt8(s.index, off + 1);
    out.writeUInt16LE(x.value.length, off + 2);
    s.suffix.copy(out, off + 4);
    x.value.copy(out, off + 4 + s.suffix.length);
    off += alignUp(ENTRY_SIZE + s.suffix.length + x.value.length, 4);
  }
  return out;
}

export function decode(buf: Buffer, off: number, count: number): XattrPair[] {
  const size = sizeOfIcount(count);
  need(buf, off, size, 'xattr');
  if (size === 0) return [];
  const shared = buf.readUInt8(off + 4);
  if (shared !== 0) throw formatError('xattr', 'h_shared_count', shared, 'shared xattrs are not supported');
  const out: XattrPair[] = [];
  let p = off + HEADER_SIZE;
  const end = off + size;
  while (p + ENTRY_SIZE <= end) {
    const nameLen = buf.readUInt8(p);
    const index = buf.readUInt8(p + 1);
    const valueLen = buf.readUInt16LE(p + 2);
    if (p + ENTRY_SIZE + nameLen + valueLen > end) throw formatError('xattr', 'e_value_size', valueLen, 'entry runs past the xattr area');
    const prefix = PREFIXES.find((x) => x.index === index);
    if (!prefix) throw formatError('xattr', 'e_name_index', index, 'unknown name prefix index');
    const name = Buffer.concat([prefix.prefix, buf.subarray(p + 4, p + 4 + nameLen)]);
    const value = Buffer.from(buf.subarray(p + 4 + nameLen, p + 4 + nameLen + valueLen));
    out.push({ name, value });
    p += alignUp(ENTRY_SIZE + nameLen + valueLen, 4);
  }
  return out;
}
