// The file-system comparison of `nydusify check`, judged on tables built here: every field that
// differs is one difference (not only the first), in path order; a hardlink group that differs is
// named once; types that differ stop the comparison of that path.
import { describe, expect, it } from 'vitest';
import { encodeDev } from '../../src/format/erofs/inode.js';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from '../../src/format/mode.js';
import { compareRootfs, describeFsDifference } from '../../src/oci/fs-compare.js';
import type { FsEntry, Rootfs } from '../../src/oci/rootfs.js';

const b = (s: string) => Buffer.from(s);

function entry(path: string, o: Partial<FsEntry> = {}): FsEntry {
  return { path: b(path), mode: S_IFREG | 0o644, uid: 0, gid: 0, size: 3, rdev: 0, mtime: 1, mtimeNsec: 0, nlink: 1, xattrs: [], digest: 'sha256:aa', ...o };
}

function table(...entries: FsEntry[]): Rootfs {
  return new Map(entries.map((e) => [e.path.toString('latin1'), e]));
}

const root = (o: Partial<FsEntry> = {}) => entry('/', { mode: S_IFDIR | 0o755, size: 0, nlink: 2, digest: undefined, ...o });

describe('compareRootfs', () => {
  it('equal tables have no difference', () => {
    const t = () => table(root(), entry('/a'), entry('/l', { mode: S_IFLNK | 0o777, size: 1, target: b('a'), digest: undefined }));
    expect(compareRootfs(t(), t())).toEqual([]);
  });

  it('compares rdev for character and block devices only, as a mount shows it (RAFS v5 from a tar stores u32::MAX elsewhere)', () => {
    const s = table(root(), entry('/f'), entry('/d', { mode: S_IFDIR | 0o755, size: 0, digest: undefined }), entry('/c', { mode: S_IFCHR | 0o600, size: 0, rdev: encodeDev(1, 3), digest: undefined }));
    const t = table(
      root({ rdev: 0xffff_ffff }), entry('/f', { rdev: 0xffff_ffff }), entry('/d', { mode: S_IFDIR | 0o755, size: 0, rdev: 0xffff_ffff, digest: undefined }),
      entry('/c', { mode: S_IFCHR | 0o600, size: 0, rdev: 0xffff_ffff, digest: undefined }),
    );
    expect(compareRootfs(s, t).map(describeFsDifference)).toEqual(['"/c": rdev differs: source 1:3, target 4095:1048575']);
  });

  it('lists every field that differs, each once, in path order', () => {
    const s = table(
      root(),
      entry('/f', { xattrs: [{ name: b('user.a'), value: b('1') }, { name: b('user.b'), value: b('2') }] }),
      entry('/dev', { mode: S_IFCHR | 0o600, size: 0, rdev: encodeDev(1, 3), digest: undefined }),
      entry('/gone'),
      entry('/l', { mode: S_IFLNK | 0o777, size: 1, target: b('f'), digest: undefined }),
      entry('/t', { digest: undefined }),
    );
    const t = table(
      root({ mtime: 9 }),
      entry('/f', { mode: S_IFREG | 0o600, uid: 1, gid: 2, size: 4, mtime: 2, mtimeNsec: 5, nlink: 2, digest: 'sha256:bb', xattrs: [{ name: b('user.a'), value: b('x') }, { name: b('user.c'), value: b('3') }] }),
      entry('/dev', { mode: S_IFCHR | 0o600, size: 0, rdev: encodeDev(1, 300), digest: undefined }),
      entry('/l', { mode: S_IFLNK | 0o777, size: 1, target: b('g'), digest: undefined }),
      entry('/new', { mode: S_IFDIR | 0o755, size: 0, digest: undefined }),
      entry('/t', { mode: S_IFLNK | 0o777, target: b('x'), digest: undefined }),
    );
    expect(compareRootfs(s, t).map(describeFsDifference)).toEqual([
      '"/": mtime differs: source 1.000000000, target 9.000000000',
      '"/dev": rdev differs: source 1:3, target 1:300',
      '"/f": mode differs: source 0644, target 0600',
      '"/f": uid differs: source 0, target 1',
      '"/f": gid differs: source 0, target 2',
      '"/f": size differs: source 3, target 4',
      '"/f": xattr "user.a" differs: source "1", target "x"',
      '"/f": xattr "user.b" differs: source "2", target (none)',
      '"/f": xattr "user.c" differs: source (none), target "3"',
      '"/f": content differs: source sha256:aa, target sha256:bb',
      '"/f": mtime differs: source 1.000000000, target 2.000000005',
      '"/f": nlink differs: source 1, target 2',
      '"/gone": missing in the target (the source has a regular file)',
      '"/l": symlink differs: source "f", target "g"',
      '"/new": not in the source (the target has a directory)',
      '"/t": type differs: source regular file, target symlink',
    ]);
  });

  it('a content that cannot be read is a difference, with the reason', () => {
    const d = compareRootfs(table(entry('/f')), table(entry('/f', { digest: undefined, unreadable: 'no blob' })));
    expect(d.map(describeFsDifference)).toEqual(['"/f": content differs: source sha256:aa, target unreadable (no blob)']);
  });

  it('names a hardlink group that differs once, not at each of its names', () => {
    const sGroup = [b('/a'), b('/b'), b('/c')];
    const tGroup = [b('/a'), b('/b')];
    const s = table(entry('/a', { links: sGroup, nlink: 3 }), entry('/b', { links: sGroup, nlink: 3 }), entry('/c', { links: sGroup, nlink: 3 }));
    const t = table(entry('/a', { links: tGroup, nlink: 2 }), entry('/b', { links: tGroup, nlink: 2 }), entry('/c'));
    expect(compareRootfs(s, t).map(describeFsDifference)).toEqual([
      '"/a": nlink differs: source 3, target 2',
      '"/a": hardlinks differs: source "/a", "/b", "/c", target "/a", "/b"',
      '"/b": nlink differs: source 3, target 2',
      '"/c": nlink differs: source 3, target 1',
      '"/c": hardlinks differs: source "/a", "/b", "/c", target "/c"',
    ]);
  });

  it('paths that are not UTF-8 or hold control bytes stay one line', () => {
    const odd = Buffer.from([0x2f, 0x61, 0x0a, 0xff]);
    const d = compareRootfs(table(entry(odd.toString('latin1'), { path: odd })), new Map());
    expect(d).toHaveLength(1);
    expect(d[0]!.path.equals(odd)).toBe(true);
    expect(describeFsDifference(d[0]!)).not.toContain('\n');
  });
});
