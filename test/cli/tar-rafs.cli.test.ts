// `create -t tar-rafs` / `-t targz-rafs` from outside (tar-merge-export.md §1): upstream's
// all-entry-type.tar read back through three judges (check -v, our reader with the blob, the
// kernel with --blob-cache-dir), the same tar gzipped through stdin, and bad tars failing in one
// line with nothing left behind. Absolute entry paths are accepted: upstream joins every entry
// onto "/", so `/abs/x` and `abs/x` name the same node (§1.4).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelSupport, skipLoudly, withMountedImage } from '../helpers/kernel.js';
import { writeTar, type TarMember } from '../helpers/oci.js';
import { BlobReader } from '../../src/read/data.js';
import { isDir, isReg, isSymlink, type RafsImage } from '../../src/read/model.js';
import { openImage } from '../../src/read/open.js';
import { imageEntries } from '../builder/read-back.js';
import { loggedBlobId, nydusImage, nydusImageOk, UPSTREAM } from './cli-runner.js';

const FIXTURE = join(UPSTREAM, 'tar', 'all-entry-type.tar');
const CONTENT = 'This is a test\n';
const TARGET = '../dir1/dir3/file1.txt';

interface Expected {
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  mtime: number;
}

/** The fixture as spec §1.7 decodes it, plus the synthetic root (040755 0:0 mtime 0); all 0:0. */
const EXPECTED: Record<string, Expected> = {
  '/': { type: 'dir', mode: 0o755, mtime: 0 },
  '/tar': { type: 'dir', mode: 0o755, mtime: 1665585322 },
  '/tar/dir1': { type: 'dir', mode: 0o755, mtime: 1665584666 },
  '/tar/dir1/dir3': { type: 'dir', mode: 0o755, mtime: 1665597453 },
  '/tar/dir1/dir3/hardlink1.txt': { type: 'file', mode: 0o644, mtime: 1665584430 },
  '/tar/dir1/dir3/xfile.txt': { type: 'file', mode: 0o644, mtime: 1665584430 },
  '/tar/dir1/hardlink2.txt': { type: 'file', mode: 0o644, mtime: 1665584430 },
  '/tar/dir2': { type: 'dir', mode: 0o755, mtime: 1665584696 },
  '/tar/dir2/hardlink3.txt': { type: 'file', mode: 0o644, mtime: 1665584430 },
  '/tar/dir2/symlink1.txt': { type: 'symlink', mode: 0o755, mtime: 1665584696 },
};
const GROUP = Object.keys(EXPECTED).filter((p) => EXPECTED[p]!.type === 'file');
const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000 } as const;

let work = '';
let built = { boot: '', blob: '', id: '' };

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-tar-rafs-cli-'));
  const out = join(work, 'plain');
  await mkdir(out);
  const r = await nydusImageOk(['create', '-t', 'tar-rafs', '-B', join(out, 'boot'), '-b', join(out, 'blob'), FIXTURE]);
  built = { boot: join(out, 'boot'), blob: join(out, 'blob'), id: loggedBlobId(r.stderr) };
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('upstream all-entry-type.tar through -t tar-rafs', () => {
  it('check -v lists every entry: one 4-member hardlink group, the dangling symlink, the dirs, and verifies the chunk', async () => {
    const r = await nydusImageOk(['check', '-v', '-B', built.boot, '-b', built.blob]);
    const lines = r.stdout.toString().split('\n').filter((l) => l.startsWith('inode: '));
    const re = /^inode: (\S+) ino (\d+) mode 0o([0-7]+) uid (\d+) gid (\d+) nlink (\d+) size (\d+) mtime (\d+)\.(\d{9})(?: -> (.*))?$/;
    const seen: Record<string, { ino: number; mode: number; uid: number; gid: number; nlink: number; size: number; mtime: number; target?: string }> = {};
    for (const l of lines) {
      const m = re.exec(l);
      expect(m, l).not.toBeNull();
      seen[m![1]!] = {
        ino: Number(m![2]), mode: parseInt(m![3]!, 8), uid: Number(m![4]), gid: Number(m![5]), nlink: Number(m![6]),
        size: Number(m![7]), mtime: Number(m![8]), ...(m![10] !== undefined ? { target: m![10] } : {}),
      };
      expect(m![9]).toBe('000000000');
    }
    expect(Object.keys(seen).sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const [p, e] of Object.entries(EXPECTED)) {
      const s = seen[p]!;
      expect({ p, mode: s.mode, uid: s.uid, gid: s.gid, mtime: s.mtime }).toEqual({ p, mode: TYPE_BITS[e.type] | e.mode, uid: 0, gid: 0, mtime: e.mtime });
    }
    expect(new Set(GROUP.map((p) => seen[p]!.ino)).size).toBe(1);
    for (const p of GROUP) expect([seen[p]!.nlink, seen[p]!.size]).toEqual([4, 15]);
    expect(seen['/tar/dir2/symlink1.txt']).toMatchObject({ target: TARGET, size: TARGET.length, nlink: 1 });
    expect(r.stdout.toString()).toContain('RAFS filesystem metadata is valid');
  });

  it('openImage + BlobReader: ten inodes, every attribute, the 15 bytes through each of the four names', () => {
    const image = openImage(built.boot);
    expect(image.version).toBe(6);
    expect(image.inodeCount).toBe(10);
    expect(image.blobs.map((b) => b.blobId)).toEqual([built.id]);
    const reader = new BlobReader(image, { blob: built.blob });
    try {
      const paths: string[] = [];
      const inos = new Set<number>();
      for (const [rel, n] of imageEntries(image.root)) {
        const p = `/${rel.toString()}`;
        paths.push(p);
        const e = EXPECTED[p]!;
        expect({ p, mode: n.mode, uid: n.uid, gid: n.gid, mtime: n.mtime, nsec: n.mtimeNsec, xattrs: n.xattrs.length })
          .toEqual({ p, mode: TYPE_BITS[e.type] | e.mode, uid: 0, gid: 0, mtime: e.mtime, nsec: 0, xattrs: 0 });
        if (isReg(n.mode)) {
          inos.add(n.ino);
          expect([n.size, n.nlink]).toEqual([15, 4]);
          expect(Buffer.concat([...reader.readFile(n, true)]).toString()).toBe(CONTENT);
        } else if (isSymlink(n.mode)) {
          expect(n.target?.toString()).toBe(TARGET);
          expect(n.size).toBe(TARGET.length);
        } else {
          expect(isDir(n.mode)).toBe(true);
        }
      }
      expect(paths.sort()).toEqual(Object.keys(EXPECTED).sort());
      expect(inos.size).toBe(1);
    } finally {
      reader.close();
    }
  });

  it('the kernel mounts it with the --blob-cache-dir data as its device and reads every entry', async (ctx) => {
    const k = kernelSupport();
    if (!k.ok) skipLoudly(ctx, k.why!);
    const out = join(work, 'cache-build');
    const cache = join(out, 'cache');
    await mkdir(cache, { recursive: true });
    const r = await nydusImageOk(['create', '-t', 'tar-rafs', '-B', join(out, 'boot'), '--blob-cache-dir', cache, FIXTURE]);
    const id = loggedBlobId(r.stderr);
    expect((await readdir(cache)).sort()).toEqual([`${id}.blob.data`, `${id}.blob.meta`]);
    await withMountedImage(join(out, 'boot'), [join(cache, `${id}.blob.data`)], async (mnt) => {
      const inos = new Set<number>();
      for (const [p, e] of Object.entries(EXPECTED)) {
        const st = await lstat(join(mnt, p));
        const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
        expect({ p, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtimeMs / 1000 })
          .toEqual({ p, type: e.type, mode: e.mode, uid: 0, gid: 0, mtime: e.mtime });
        if (e.type === 'file') {
          inos.add(st.ino);
          expect(st.nlink).toBe(4);
          expect(await readFile(join(mnt, p), 'utf8')).toBe(CONTENT);
        }
      }
      expect(inos.size).toBe(1);
      expect(await readlink(join(mnt, 'tar/dir2/symlink1.txt'))).toBe(TARGET);
      await expect(stat(join(mnt, 'tar/dir2/symlink1.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await readdir(mnt)).sort()).toEqual(['tar']);
      expect((await readdir(join(mnt, 'tar/dir1'))).sort()).toEqual(['dir3', 'hardlink2.txt']);
    });
  });
});

describe('gzip input and stdin', () => {
  for (const [label, type, source] of [
    ['-t targz-rafs from "-"', 'targz-rafs', '-'],
    ['-t targz-rafs from /dev/stdin', 'targz-rafs', '/dev/stdin'],
    // The first three bytes decide, not the type's name (spec §1.1).
    ['-t tar-rafs given gzip on "-"', 'tar-rafs', '-'],
  ] as const) {
    it(`${label} gives the plain build's bootstrap and blob, byte for byte`, async () => {
      const out = join(work, `gz-${label.replace(/\W+/g, '_')}`);
      await mkdir(out);
      const gz = gzipSync(await readFile(FIXTURE));
      const r = await nydusImageOk(['create', '-t', type, '-B', join(out, 'boot'), '-b', join(out, 'blob'), source], { input: gz });
      expect(loggedBlobId(r.stderr)).toBe(built.id);
      expect((await readFile(join(out, 'boot'))).equals(await readFile(built.boot))).toBe(true);
      expect((await readFile(join(out, 'blob'))).equals(await readFile(built.blob))).toBe(true);
      expect((await readdir(out)).sort()).toEqual(['blob', 'boot']);
    });
  }
});

// Each case is its own process and directory, so they run side by side.
describe.concurrent('bad tar input: one line, non-zero exit, nothing left in the output dir', () => {
  const bad: Array<{ name: string; type?: string; make: (file: string) => Promise<unknown>; error: RegExp }> = [
    {
      name: 'upstream empty.tar (0 bytes: the 3-byte gzip sniff fails)',
      make: (f) => copyFile(join(UPSTREAM, 'tar', 'empty.tar'), f),
      error: /0 bytes|too short|empty/i,
    },
    {
      name: 'upstream all-entry-type-macos.tar (a SCHILY.xattr name outside the allowed namespaces)',
      make: (f) => copyFile(join(UPSTREAM, 'tar', 'all-entry-type-macos.tar'), f),
      error: /invalid xattr key/,
    },
    {
      name: 'a tar truncated inside a header',
      make: async (f) => writeFile(f, (await readFile(FIXTURE)).subarray(0, 3000)),
      error: /truncated/i,
    },
    {
      name: 'a tar truncated inside file data',
      make: async (f) => writeFile(f, (await readFile(FIXTURE)).subarray(0, 2055)),
      error: /truncated/i,
    },
    {
      name: 'a corrupt gzip stream',
      type: 'targz-rafs',
      make: async (f) => {
        const gz = Buffer.from(gzipSync(await readFile(FIXTURE)));
        for (let i = 20; i < 60; i++) gz[i]! ^= 0xff;
        return writeFile(f, gz);
      },
      error: /gzip/i,
    },
    {
      name: 'a gzip stream cut in half',
      type: 'targz-rafs',
      make: async (f) => {
        const gz = gzipSync(await readFile(FIXTURE));
        return writeFile(f, gz.subarray(0, gz.length >> 1));
      },
      error: /gzip|end of file|truncated/i,
    },
    {
      name: 'an entry path with ../ (upstream aborts the process)',
      make: (f) => writeTar(f, [{ name: 'a', type: 'file', data: 'a' }, { name: '../evil', type: 'file', data: 'evil' }]),
      error: /\.\./,
    },
    {
      name: 'an entry path climbing out through a/../../b',
      make: (f) => writeTar(f, [{ name: 'a/../../b', type: 'file', data: 'x' }]),
      error: /\.\./,
    },
    {
      name: 'an entry path ending in ..',
      make: (f) => writeTar(f, [{ name: 'a/..', type: 'dir' }]),
      error: /\.\./,
    },
    {
      name: 'a hardlink to a missing target',
      make: (f) => writeTar(f, [{ name: 'a', type: 'file', data: 'a' }, { name: 'b', type: 'hardlink', linkname: 'missing' }]),
      error: /unknown target .*missing.* for hardlink/,
    },
    {
      name: 'a hardlink before its target',
      make: (f) => writeTar(f, [{ name: 'b', type: 'hardlink', linkname: 'a' }, { name: 'a', type: 'file', data: 'a' }]),
      error: /unknown target .*a.* for hardlink/,
    },
    {
      name: 'a hardlink to a directory',
      make: (f) => writeTar(f, [{ name: 'd', type: 'dir' }, { name: 'b', type: 'hardlink', linkname: 'd' }]),
      error: /not a regular file/,
    },
    {
      name: 'a hardlink whose target climbs with ..',
      make: (f) => writeTar(f, [{ name: 'a', type: 'file', data: 'a' }, { name: 'b', type: 'hardlink', linkname: '../a' }]),
      error: /\.\./,
    },
  ];

  for (const b of bad) {
    for (const mode of ['-D', '-b'] as const) {
      it(`${b.name} (${mode === '-D' ? '-B + -D dir' : '-B + -b file'})`, async ({ expect }) => {
        const dir = join(work, `bad-${b.name.replace(/\W+/g, '_')}-${mode.slice(1)}`);
        const out = join(dir, 'out');
        await mkdir(join(out, 'blobs'), { recursive: true });
        const input = join(dir, 'input');
        await b.make(input);
        const dest = mode === '-D' ? ['-D', join(out, 'blobs')] : ['-b', join(out, 'blob')];
        const r = await nydusImage(['create', '-t', b.type ?? 'tar-rafs', '-B', join(out, 'boot'), ...dest, input]);
        expect(r.code).not.toBe(0);
        expect(r.code).not.toBeNull();
        const err = r.stderr.toString().trimEnd();
        expect(err.split('\n'), err).toHaveLength(1);
        expect(err).toMatch(/^Error: /);
        expect(err).toMatch(b.error);
        expect(r.stdout.toString()).toBe('');
        expect(await readdir(out)).toEqual(['blobs']);
        expect(await readdir(join(out, 'blobs'))).toEqual([]);
      });
    }
  }
});

describe('path normalisation (spec §1.4)', () => {
  it('accepts an absolute entry path as upstream does, collapses // and ., and keeps implied parents\' children', async () => {
    const members: TarMember[] = [
      { name: '/abs/x', type: 'file', data: 'abs\n', mtime: 1_600_000_001 },
      { name: './n//m/./f', type: 'file', data: 'f', mtime: 1_600_000_002 },
      // An explicit entry for an implied parent replaces its attributes and keeps its children.
      { name: 'n/./m//', type: 'dir', mode: 0o700, mtime: 1_600_000_003 },
      { name: '/', type: 'dir', mode: 0o711, mtime: 1_600_000_004 },
    ];
    const dir = join(work, 'norm');
    await mkdir(dir);
    await writeTar(join(dir, 'in.tar'), members);
    await nydusImageOk(['create', '-t', 'tar-rafs', '-B', join(dir, 'boot'), '-b', join(dir, 'blob'), join(dir, 'in.tar')]);
    const image: RafsImage = openImage(join(dir, 'boot'));
    const got: Record<string, string> = {};
    const reader = new BlobReader(image, { blob: join(dir, 'blob') });
    try {
      for (const [rel, n] of imageEntries(image.root)) {
        const data = isReg(n.mode) ? ` ${Buffer.concat([...reader.readFile(n, true)]).toString()}` : '';
        got[`/${rel.toString()}`] = `${n.mode.toString(8)} ${n.uid}:${n.gid} ${n.mtime}${data}`;
      }
    } finally {
      reader.close();
    }
    expect(got).toEqual({
      '/': '40711 0:0 1600000004',
      // Implied parents: the synthetic root's attributes (040755 0:0 mtime 0).
      '/abs': '40755 0:0 0',
      '/abs/x': '100644 0:0 1600000001 abs\n',
      '/n': '40755 0:0 0',
      '/n/m': '40700 0:0 1600000003',
      '/n/m/f': '100644 0:0 1600000002 f',
    });
  });
});
