// The file-system comparison of `nydusify check` (spec oci-and-converters.md §3.2 rule 3): every
// path of either root file system, in byte order, and for each one every field that differs.
// Upstream compares path, type and mode, uid, gid, size (not of directories), rdev, symlink
// target, xattrs and a content hash, and stops at the first mismatch; this lists every
// difference and also compares mtime, nlink and hardlink groups. Pure: no I/O.
import { decodeDev } from '../format/erofs/inode.js';
import { S_IFMT, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK } from '../format/mode.js';
import type { FsEntry, Rootfs } from './rootfs.js';

export interface FsDifference {
  /** Path bytes from the root. */
  path: Buffer;
  /** What differs: missing, extra, type, mode, uid, gid, size, rdev, symlink, xattr:<name>, content, mtime, nlink, hardlinks. */
  field: string;
  /** The value on each side, as text; absent where that side has none. */
  source?: string;
  target?: string;
}

const TYPES: Record<number, string> = {
  [S_IFREG]: 'regular file', [S_IFDIR]: 'directory', [S_IFLNK]: 'symlink', [S_IFCHR]: 'character device',
  [S_IFBLK]: 'block device', [S_IFIFO]: 'fifo', [S_IFSOCK]: 'socket',
};

export const typeName = (mode: number): string => TYPES[mode & S_IFMT] ?? `file of type 0${(mode & S_IFMT).toString(8)}`;

/** A path for a message: quoted, control bytes escaped, so a difference stays one line. */
export const showPath = (path: Buffer): string => JSON.stringify(path.toString('utf8'));

/** Bytes for a message: a quoted string when printable, else hex; long ones cut, with their length. */
export function showBytes(b: Buffer): string {
  const head = b.subarray(0, 64);
  const printable = head.every((c) => c >= 0x20 && c < 0x7f);
  const text = printable ? JSON.stringify(head.toString('latin1')) : `0x${head.toString('hex')}`;
  return b.length > head.length ? `${text}… (${b.length} bytes)` : text;
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
const time = (e: FsEntry) => `${e.mtime}.${String(e.mtimeNsec).padStart(9, '0')}`;
const dev = (rdev: number) => {
  const d = decodeDev(rdev);
  return `${d.major}:${d.minor}`;
};
const linkList = (links: Buffer[] | undefined, self: Buffer) => (links ?? [self]).map(showPath).join(', ');

/** Every difference between the two root file systems, ordered by path, then field. */
export function compareRootfs(source: Rootfs, target: Rootfs): FsDifference[] {
  const out: FsDifference[] = [];
  const keys = [...new Set([...source.keys(), ...target.keys()])].sort();
  // A hardlink group that differs is reported once, at its first path, not at every member.
  const reportedGroups = new Set<string>();
  for (const key of keys) {
    const s = source.get(key);
    const t = target.get(key);
    if (!t) {
      out.push({ path: s!.path, field: 'missing', source: typeName(s!.mode) });
      continue;
    }
    if (!s) {
      out.push({ path: t.path, field: 'extra', target: typeName(t.mode) });
      continue;
    }
    const diff = (field: string, a: string | undefined, b: string | undefined) => {
      if (a !== b) out.push({ path: s.path, field, ...(a !== undefined ? { source: a } : {}), ...(b !== undefined ? { target: b } : {}) });
    };
    if ((s.mode & S_IFMT) !== (t.mode & S_IFMT)) {
      // Nothing else compares meaningfully across types.
      diff('type', typeName(s.mode), typeName(t.mode));
      continue;
    }
    diff('mode', octal(s.mode), octal(t.mode));
    diff('uid', String(s.uid), String(t.uid));
    diff('gid', String(s.gid), String(t.gid));
    if ((s.mode & S_IFMT) !== S_IFDIR) diff('size', String(s.size), String(t.size));
    // Upstream stats the mounted image, and the kernel keeps a device number for character and
    // block devices only (RAFS v5 built from a tar records u32::MAX for every other inode).
    const type = s.mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) diff('rdev', dev(s.rdev), dev(t.rdev));
    if (s.target || t.target) diff('symlink', s.target ? showBytes(s.target) : undefined, t.target ? showBytes(t.target) : undefined);
    compareXattrs(s, t, out);
    if ((s.mode & S_IFMT) === S_IFREG) {
      const a = s.digest ?? `unreadable (${s.unreadable ?? 'unknown'})`;
      const b = t.digest ?? `unreadable (${t.unreadable ?? 'unknown'})`;
      if (s.digest === undefined || t.digest === undefined || a !== b) out.push({ path: s.path, field: 'content', source: a, target: b });
    }
    diff('mtime', time(s), time(t));
    diff('nlink', String(s.nlink), String(t.nlink));
    if ((s.mode & S_IFMT) === S_IFREG && (s.links || t.links)) {
      const a = linkList(s.links, s.path);
      const b = linkList(t.links, t.path);
      const pair = `${a}\n${b}`;
      if (a !== b && !reportedGroups.has(pair)) {
        reportedGroups.add(pair);
        out.push({ path: s.path, field: 'hardlinks', source: a, target: b });
      }
    }
  }
  return out;
}

function compareXattrs(s: FsEntry, t: FsEntry, out: FsDifference[]): void {
  const a = new Map(s.xattrs.map((x) => [x.name.toString('latin1'), x.value]));
  const b = new Map(t.xattrs.map((x) => [x.name.toString('latin1'), x.value]));
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const va = a.get(name);
    const vb = b.get(name);
    if (va && vb && va.equals(vb)) continue;
    out.push({
      path: s.path, field: `xattr ${JSON.stringify(Buffer.from(name, 'latin1').toString('utf8'))}`,
      ...(va ? { source: showBytes(va) } : {}), ...(vb ? { target: showBytes(vb) } : {}),
    });
  }
}

/** One line for a difference: `"/a/b": mode differs: source 0644, target 0600`. */
export function describeFsDifference(d: FsDifference): string {
  const p = showPath(d.path);
  if (d.field === 'missing') return `${p}: missing in the target (the source has a ${d.source})`;
  if (d.field === 'extra') return `${p}: not in the source (the target has a ${d.target})`;
  return `${p}: ${d.field} differs: source ${d.source ?? '(none)'}, target ${d.target ?? '(none)'}`;
}
