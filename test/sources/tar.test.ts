// The tar source judged from outside: tars written by GNU tar and Python's tarfile (and the
// upstream fixtures) are read as files, FIFOs, odd-sliced streams and single- or multi-member
// gzip; the tree must match what the directory source reads from the same files on disk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, symlink, link, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { tarSource, type TarSourceOptions } from '../../src/sources/tar.js';
import { dirSource } from '../../src/sources/dir.js';
import { TreeAssembler } from '../../src/tree/assemble.js';
import { layoutOrder, type TreeNode } from '../../src/tree/node.js';
import { encodeDev } from '../../src/format/erofs/inode.js';
import { NydusError } from '../../src/errors.js';
import { LIMITS } from '../../src/format/limits.js';
import type { ContentReader, SourceEntry } from '../../src/pipeline/stage.js';
import { run, runOk } from '../helpers/tools.js';
import { buildHostileTree, mknod, prng, setMtimeNs, type TreeManifest } from '../helpers/tree.js';
import { skipLoudly } from '../helpers/kernel.js';
import { UPSTREAM } from '../cli/cli-runner.js';

const FIXTURES = join(UPSTREAM, 'tar');
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const L = (b: Buffer) => b.toString('latin1');

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-tar-src-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** What a test compares of one entry; paths as latin1 strings so non-UTF-8 bytes survive. */
interface Got {
  path: string;
  name: string;
  mode: string;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  size: number;
  rdev: number;
  target?: string;
  xattrs: Array<[string, string]>;
  linkTo?: string;
  replaces?: string;
  parent?: string;
  /** sha256 of the content, for regular files that carry data. */
  sha?: string;
}

type ReadMode = 'chunker' | 'small' | 'none';

/** Reads exactly size bytes as the chunker does (awaiting only promises), in pieces of step bytes. */
async function readAll(r: ContentReader, size: number, step: number): Promise<Buffer> {
  const buf = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    const x = r.read(buf, got, Math.min(step, size - got));
    const n = typeof x === 'number' ? x : await x;
    if (n === 0) throw new Error(`content ended at ${got} of ${size}`);
    got += n;
  }
  const after = r.read(Buffer.alloc(1), 0, 1);
  expect(typeof after === 'number' ? after : await after).toBe(0);
  r.close();
  return buf;
}

function describeEntry(e: SourceEntry): Got {
  const n = e.node;
  const g: Got = {
    path: L(n.path), name: L(n.name), mode: n.mode.toString(8), uid: n.uid, gid: n.gid, mtime: n.mtime,
    mtimeNsec: n.mtimeNsec, size: n.size, rdev: n.rdev, xattrs: n.xattrs.map((x) => [L(x.name), x.value.toString('hex')]),
  };
  if (n.target) g.target = L(n.target);
  if (n.linkTo) g.linkTo = L(n.linkTo.path);
  if (e.replaces) g.replaces = L(e.replaces.path);
  if (e.parent) g.parent = L(e.parent.path);
  return g;
}

/** Runs the source to the end, reading every data-carrying file; checks each parent was yielded first. */
async function collect(input: string | NodeJS.ReadableStream, opts?: TarSourceOptions, how: ReadMode = 'chunker'): Promise<Got[]> {
  const out: Got[] = [];
  const seen = new Set<TreeNode>();
  for await (const e of tarSource(input, opts)) {
    if (e.parent && !seen.has(e.parent)) throw new Error(`parent of ${L(e.node.path)} was not yielded before it`);
    if (e.parent) expect(L(e.node.path)).toBe(L(e.parent.path) === '/' ? `/${L(e.node.name)}` : `${L(e.parent.path)}/${L(e.node.name)}`);
    seen.add(e.node);
    const g = describeEntry(e);
    if (e.open && !e.node.linkTo && how !== 'none') g.sha = sha(await readAll(e.open(), e.node.size, how === 'small' ? 1000 : MiB));
    out.push(g);
  }
  return out;
}

async function failure(input: string | NodeJS.ReadableStream, opts?: TarSourceOptions, how: ReadMode = 'chunker'): Promise<NydusError> {
  try {
    await collect(input, opts, how);
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    expect((e as NydusError).code).toBe('SOURCE');
    expect((e as Error).message).not.toContain('\n');
    return e as NydusError;
  }
  throw new Error('expected the tar source to fail');
}

/** A stream that hands out the bytes in slices of the given sizes, round and round. */
function sliced(buf: Buffer, sizes = [1, 7, 511, 513]): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0, i = 0; at < buf.length; i++) {
        const n = sizes[i % sizes.length]!;
        yield buf.subarray(at, at + n);
        at += n;
      }
    })(),
  );
}

/** Gzip in three members, as pigz or a concatenation of layers would write it. */
function multiGzip(buf: Buffer): Buffer {
  const a = Math.floor(buf.length / 3);
  return Buffer.concat([buf.subarray(0, a), buf.subarray(a, 2 * a), buf.subarray(2 * a)].map((p) => zlib.gzipSync(p)));
}

/** The same tar as a file, odd slices, gzip (file and slices) and multi-member gzip; every way must read alike. */
async function expectSameEverywhere(tarPath: string, expected: Got[], how: ReadMode = 'chunker'): Promise<void> {
  const raw = await readFile(tarPath);
  const gz = zlib.gzipSync(raw);
  const gzPath = `${tarPath}.gz`;
  await writeFile(gzPath, gz);
  expect(await collect(sliced(raw), undefined, how)).toEqual(expected);
  expect(await collect(gzPath, undefined, how)).toEqual(expected);
  expect(await collect(sliced(gz, [3, 1, 4096, 9]), undefined, how)).toEqual(expected);
  expect(await collect(sliced(multiGzip(raw), [2, 65537]), undefined, how)).toEqual(expected);
}

const PY_PRELUDE = `
import tarfile, io, sys
def S(b):
    return b.decode('utf-8', 'surrogateescape') if isinstance(b, bytes) else b
def info(name, type=tarfile.REGTYPE, **kw):
    t = tarfile.TarInfo(S(name))
    t.type = type
    t.mtime = 1700000000
    for k, v in kw.items():
        setattr(t, k, S(v) if k == 'linkname' else v)
    return t
def add(t, name, data=b'', type=tarfile.REGTYPE, **kw):
    i = info(name, type, **kw)
    if type in (tarfile.REGTYPE, tarfile.CONTTYPE):
        i.size = len(data)
        t.addfile(i, io.BytesIO(data))
    else:
        t.addfile(i)
def new(fmt=tarfile.GNU_FORMAT, **kw):
    return tarfile.open(sys.argv[1], 'w', format=fmt, encoding='utf-8', errors='surrogateescape', **kw)
GNU, PAX, USTAR = tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT
`;

/** Writes a tar with Python's tarfile; the body sees add(), new(), info() and the format names. */
async function pyTar(name: string, body: string): Promise<string> {
  const out = join(work, name);
  await runOk('python3', ['-c', PY_PRELUDE + body, out]);
  return out;
}

async function pyBytes(body: string): Promise<Buffer> {
  const r = await runOk('python3', ['-c', `${PY_PRELUDE}\nsys.stdout.buffer.write(${body})`]);
  return r.stdout;
}

describe('upstream fixtures', () => {
  const CONTENT = sha('This is a test\n');
  const dir = (path: string, mtime: number, parent: string): Got => ({
    path, name: path.slice(path.lastIndexOf('/') + 1), mode: '40755', uid: 0, gid: 0, mtime, mtimeNsec: 0, size: 0, rdev: 0, xattrs: [], parent,
  });
  const file = (path: string, parent: string, extra: Partial<Got>): Got => ({
    path, name: path.slice(path.lastIndexOf('/') + 1), mode: '100644', uid: 0, gid: 0, mtime: 1665584430, mtimeNsec: 0, size: 15, rdev: 0, xattrs: [], parent, ...extra,
  });
  const EXPECTED: Got[] = [
    { path: '/', name: '', mode: '40755', uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, size: 0, rdev: 0, xattrs: [] },
    dir('/tar', 1665585322, '/'),
    dir('/tar/dir1', 1665584666, '/tar'),
    dir('/tar/dir1/dir3', 1665597453, '/tar/dir1'),
    file('/tar/dir1/dir3/hardlink1.txt', '/tar/dir1/dir3', { sha: CONTENT }),
    file('/tar/dir1/dir3/xfile.txt', '/tar/dir1/dir3', { linkTo: '/tar/dir1/dir3/hardlink1.txt' }),
    file('/tar/dir1/hardlink2.txt', '/tar/dir1', { linkTo: '/tar/dir1/dir3/hardlink1.txt' }),
    dir('/tar/dir2', 1665584696, '/tar'),
    file('/tar/dir2/hardlink3.txt', '/tar/dir2', { linkTo: '/tar/dir1/dir3/hardlink1.txt' }),
    file('/tar/dir2/symlink1.txt', '/tar/dir2', { mode: '120755', mtime: 1665584696, size: 22, target: '../dir1/dir3/file1.txt' }),
  ];

  it('all-entry-type.tar: synthetic root, one 4-name hardlink group, a dangling symlink (spec §1.7)', async () => {
    const path = join(FIXTURES, 'all-entry-type.tar');
    expect(await collect(path)).toEqual(EXPECTED);
    await expectSameEverywhere(path, EXPECTED, 'small');

    // Linked into a tree, the group has one carrier with four names.
    const asm = new TreeAssembler();
    for await (const e of tarSource(path)) expect(asm.attach(e.node, e.parent, e.replaces)).toBe(true);
    const names = [...layoutOrder(asm.root!)].map((n) => [L(n.path), n.links, n.linkTo ? L(n.linkTo.path) : '']);
    expect(names.filter(([, , to]) => to === '/tar/dir1/dir3/hardlink1.txt')).toHaveLength(3);
    expect(names.find(([p]) => p === '/tar/dir1/dir3/hardlink1.txt')).toEqual(['/tar/dir1/dir3/hardlink1.txt', 4, '']);
  });

  it('all-entry-type-macos.tar fails at tar/dir1/hardlink2.txt: its SCHILY.xattr "hardlink3" has no namespace', async () => {
    const seen: string[] = [];
    const err = await (async () => {
      try {
        for await (const e of tarSource(join(FIXTURES, 'all-entry-type-macos.tar'))) {
          seen.push(L(e.node.path));
          if (e.open) await readAll(e.open(), e.node.size, MiB);
        }
      } catch (e) {
        return e as NydusError;
      }
      throw new Error('expected a failure');
    })();
    expect(err.message).toBe(
      '/tar/dir1/hardlink2.txt: invalid xattr key "hardlink3": it must start with user., security., trusted., system.posix_acl_access or system.posix_acl_default',
    );
    expect(err.code).toBe('SOURCE');
    // The AppleDouble file before it was read whole (149 bytes) and the PAX-less entries came in order.
    expect(seen).toEqual(['/', '/tar', '/tar/dir2', '/tar/dir1', '/tar/dir1/._hardlink2.txt']);
  });

  it('empty.tar (0 bytes) fails the 3-byte gzip sniff; without sniffing it is an empty tree', async () => {
    const err = await failure(join(FIXTURES, 'empty.tar'));
    expect(err.message).toBe(`${FIXTURES}/empty.tar: input is 0 bytes, too short to tell tar from gzip (upstream reads 3 bytes first)`);
    expect((await failure(Readable.from([Buffer.from([0x1f, 0x8b])]))).message).toContain('input is 2 bytes');
    expect(await collect(join(FIXTURES, 'empty.tar'), { gzip: 'never' })).toEqual([EXPECTED[0]]);
  });

  it('a missing input path is a one-line error naming it', async () => {
    const err = await failure(join(work, 'no-such.tar'));
    expect(err.message).toBe(`${join(work, 'no-such.tar')}: no such file or directory`);
  });
});

describe('truncated, corrupt and trailing input', () => {
  let tar: Buffer;
  beforeAll(async () => {
    tar = await readFile(join(FIXTURES, 'all-entry-type.tar'));
  });

  it('ends inside file data: named entry, whether the content is read or skipped', async () => {
    const cut = tar.subarray(0, 2048 + 7);
    for (const how of ['chunker', 'none'] as const) {
      expect((await failure(sliced(cut), undefined, how)).message).toBe(
        "/tar/dir1/dir3/hardlink1.txt: truncated tar: the input ends 7 bytes into the entry's 15 bytes of data",
      );
    }
    expect((await failure(sliced(tar.subarray(0, 2100)))).message).toBe(
      "/tar/dir1/dir3/hardlink1.txt: truncated tar: the input ends in the padding after the entry's 15 bytes of data",
    );
  });

  it('ends inside a header', async () => {
    expect((await failure(sliced(tar.subarray(0, 1600)))).message).toBe(
      '<tar stream>: truncated tar: the input ends inside the header at tar offset 1536 (after /tar/dir1/dir3)',
    );
  });

  it('ends on a header boundary without end blocks: accepted, as upstream (the tar crate stops at EOF there)', async () => {
    const got = await collect(sliced(tar.subarray(0, 2560)));
    expect(got.map((g) => g.path)).toEqual(['/', '/tar', '/tar/dir1', '/tar/dir1/dir3', '/tar/dir1/dir3/hardlink1.txt']);
  });

  it('a header with a bad checksum, and junk after the end blocks', async () => {
    const bad = Buffer.from(tar);
    bad[1536 + 5] ^= 0x01;
    expect((await failure(sliced(bad))).message).toMatch(
      /^<tar stream>: bad tar header at tar offset 1536 \(after \/tar\/dir1\/dir3\): tar_header\.chksum = \d+: header checksum mismatch \(computed \d+\)$/,
    );
    const junk = Buffer.concat([tar, Buffer.alloc(512, 'j')]);
    expect((await failure(sliced(junk))).message).toBe(
      '<tar stream>: bad tar header at tar offset 10240 (after /tar/dir2/symlink1.txt): tar_header.chksum = "jjjjjjjj": not an octal number',
    );
    // Zero blocks anywhere are skipped (the tar crate's ignore_zeros).
    const zeros = Buffer.concat([tar.subarray(0, 1536), Buffer.alloc(4096), tar.subarray(1536)]);
    expect((await collect(sliced(zeros))).map((g) => g.path)).toHaveLength(10);
  });

  it('corrupt gzip: a bad CRC, bad header flags, a truncated member', async () => {
    const gz = zlib.gzipSync(tar);
    const crc = Buffer.from(gz);
    crc[crc.length - 6] ^= 0xff;
    expect((await failure(sliced(crc, [100]))).message).toBe('<tar stream>: corrupt gzip data: incorrect data check');
    const flags = Buffer.from(gz);
    flags[3] = 0xe0;
    expect((await failure(Readable.from([flags]))).message).toMatch(/^<tar stream>: corrupt gzip data: /);
    const short = gz.subarray(0, gz.length - 20);
    const p = join(work, 'short.tar.gz');
    await writeFile(p, short);
    expect((await failure(p)).message).toBe(`${p}: corrupt gzip data: unexpected end of file`);
  });
});

describe('paths, parents and repeated entries', () => {
  it('normalises ./, //, /./, trailing / and absolute paths; implied parents get the root attributes', async () => {
    const p = await pyTar('paths.tar', `
t = new()
add(t, 'a//b/./c/d.txt', b'deep', mode=0o640, uid=7, gid=8)
add(t, './a/b/', type=tarfile.DIRTYPE, mode=0o711, uid=1, gid=2, mtime=42)
add(t, '/abs/x', b'x')
add(t, './', type=tarfile.DIRTYPE, mode=0o700, uid=5, gid=6, mtime=123)
add(t, 'a', type=tarfile.DIRTYPE, mode=0o750)
t.close()
`);
    const got = await collect(p);
    const syn = { mode: '40755', uid: 0, gid: 0, mtime: 0, size: 0, xattrs: [] };
    expect(got.map(({ path, parent, replaces }) => ({ path, parent, replaces }))).toEqual([
      { path: '/', parent: undefined, replaces: undefined },
      { path: '/a', parent: '/', replaces: undefined },
      { path: '/a/b', parent: '/a', replaces: undefined },
      { path: '/a/b/c', parent: '/a/b', replaces: undefined },
      { path: '/a/b/c/d.txt', parent: '/a/b/c', replaces: undefined },
      { path: '/a/b', parent: '/a', replaces: '/a/b' },
      { path: '/abs', parent: '/', replaces: undefined },
      { path: '/abs/x', parent: '/abs', replaces: undefined },
      { path: '/', parent: undefined, replaces: '/' },
      { path: '/a', parent: '/', replaces: '/a' },
    ]);
    for (const i of [0, 1, 2, 3, 6]) expect(got[i]).toMatchObject(syn);
    expect(got[4]).toMatchObject({ mode: '100640', uid: 7, gid: 8, size: 4, sha: sha('deep'), mtime: 1700000000 });
    expect(got[5]).toMatchObject({ mode: '40711', uid: 1, gid: 2, mtime: 42 });
    expect(got[8]).toMatchObject({ name: '', mode: '40700', uid: 5, gid: 6, mtime: 123 });

    // Linked into a tree: explicit directories keep the children of the implied ones they replace.
    const asm = new TreeAssembler();
    for await (const e of tarSource(p)) asm.attach(e.node, e.parent, e.replaces);
    const tree = [...layoutOrder(asm.root!)].map((n) => `${L(n.path)} ${n.mode.toString(8)}`);
    expect(tree).toEqual(['/ 40700', '/a 40750', '/a/b 40711', '/a/b/c 40755', '/a/b/c/d.txt 100640', '/abs 40755', '/abs/x 100644']);
  });

  it('repeated path: last wins, earlier data is still read; a file over a directory takes its subtree with it', async () => {
    const p = await pyTar('dup.tar', `
t = new()
add(t, 'dup', b'first')
add(t, 'd', type=tarfile.DIRTYPE, mode=0o700)
add(t, 'd/child', b'c')
add(t, 'dup', b'second!', mode=0o600)
add(t, 'd', type=tarfile.DIRTYPE, mode=0o750)
add(t, 'x', type=tarfile.DIRTYPE)
add(t, 'x/y', b'y')
add(t, 'x', b'now a file')
t.close()
`);
    const got = await collect(p);
    expect(got.map((g) => [g.path, g.replaces ?? '', g.sha ?? ''])).toEqual([
      ['/', '', ''],
      ['/dup', '', sha('first')],
      ['/d', '', ''],
      ['/d/child', '', sha('c')],
      ['/dup', '/dup', sha('second!')],
      ['/d', '/d', ''],
      ['/x', '', ''],
      ['/x/y', '', sha('y')],
      ['/x', '/x', sha('now a file')],
    ]);

    const asm = new TreeAssembler();
    const byPath = new Map<string, TreeNode>();
    for await (const e of tarSource(p)) {
      if (e.replaces) expect(e.replaces).toBe(byPath.get(L(e.node.path)));
      byPath.set(L(e.node.path), e.node);
      asm.attach(e.node, e.parent, e.replaces);
    }
    const tree = [...layoutOrder(asm.root!)].map((n) => `${L(n.path)} ${n.mode.toString(8)} ${n.size}`);
    expect(tree).toEqual(['/ 40755 0', '/dup 100600 7', '/x 100644 10', '/d 40750 0', '/d/child 100644 1']);

    // A member under the file is refused (upstream hangs it below the file and drops it silently).
    const under = await pyTar('under-file.tar', "t = new()\nadd(t, 'x', type=tarfile.DIRTYPE)\nadd(t, 'x', b'now a file')\nadd(t, 'x/z', b'under a file')\nt.close()\n");
    expect((await failure(under)).message).toBe('/x/z: an earlier entry made /x a regular file, not a directory');
  });

  it('skips /stargz.index.json, /.prefetch.landmark and /.no.prefetch.landmark (data and all), only at the root', async () => {
    const p = await pyTar('special.tar', `
t = new()
add(t, 'stargz.index.json', b'{}' * 700)
add(t, './.prefetch.landmark', b'x')
add(t, '/.no.prefetch.landmark', b'y')
add(t, 'd/stargz.index.json', b'kept')
add(t, 'after', b'after')
t.close()
`);
    const got = await collect(sliced(await readFile(p)), undefined, 'none');
    expect(got.map((g) => g.path)).toEqual(['/', '/d', '/d/stargz.index.json', '/after']);
    expect((await collect(p)).at(-1)!.sha).toBe(sha('after'));
  });

  it('".." is refused with a clean error (upstream aborts the process); "a/.." has no file name', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ["add(t, '../x', b'x')", 'dotdot1', /^\/\.\.\/x: a "\.\." component in a tar entry path is not allowed$/],
      ["add(t, 'a/../b', b'x')", 'dotdot2', /^\/a\/\.\.\/b: a "\.\." component in a tar entry path is not allowed$/],
      ["add(t, 'a/..', type=tarfile.DIRTYPE)", 'dotdot3', /^\/a\/\.\.: failed to get file name from tar entry: the path ends in "\.\."$/],
      ["add(t, 'f', b'x'); add(t, 'l', type=tarfile.LNKTYPE, linkname='d/../f')", 'dotdot4', /^\/l: a "\.\." component in hardlink target \/d\/\.\.\/f is not allowed$/],
    ];
    for (const [body, name, re] of cases) {
      expect((await failure(await pyTar(`${name}.tar`, `t = new()\n${body}\nt.close()\n`))).message).toMatch(re);
    }
  });

  it('the root entry must be a directory', async () => {
    const p = await pyTar('root-file.tar', "t = new()\nadd(t, './', b'data')\nt.close()\n");
    expect((await failure(p)).message).toBe('/: the root entry of a tar must be a directory');
  });
});

describe('names, long names, numbers and PAX records (Python tarfile)', () => {
  const RAW = Buffer.from([0xff, 0xfe, 0x80, 0x2d, 0x72, 0x61, 0x77]);
  const BADDIR = Buffer.from([0xc3, 0x28, 0x2d, 0x64]);

  for (const fmt of ['GNU', 'PAX', 'USTAR'] as const) {
    it(`${fmt}: non-UTF-8 names, long names and long link targets survive byte for byte`, async () => {
      const longDir = 'l'.repeat(120);
      // 255 bytes, NAME_MAX: still past the 100 bytes of a header's name field.
      const longName = fmt === 'USTAR' ? 'f'.repeat(90) : 'n'.repeat(255);
      const target = fmt === 'USTAR' ? 'T'.repeat(100) : 'T'.repeat(300);
      // ustar has no long link names: there the hardlink names the short raw name.
      const hlTarget = fmt === 'USTAR' ? RAW : Buffer.from(`${longDir}/${longName}`);
      const p = await pyTar(`names-${fmt}.tar`, `
t = new(${fmt})
add(t, bytes.fromhex('${RAW.toString('hex')}'), b'raw name')
add(t, bytes.fromhex('${BADDIR.toString('hex')}') + b'/x', b'in a raw dir')
add(t, '${longDir}/${longName}', b'long')
add(t, 'sym', type=tarfile.SYMTYPE, linkname='${target}')
add(t, 'hl', type=tarfile.LNKTYPE, linkname=bytes.fromhex('${hlTarget.toString('hex')}'))
add(t, 'rawlink', type=tarfile.SYMTYPE, linkname=bytes.fromhex('${RAW.toString('hex')}'))
t.close()
`);
      const got = await collect(p);
      const raw = L(RAW);
      expect(got.map((g) => g.path)).toEqual(['/', `/${raw}`, `/${L(BADDIR)}`, `/${L(BADDIR)}/x`, `/${longDir}`, `/${longDir}/${longName}`, '/sym', '/hl', '/rawlink']);
      expect(got[1]).toMatchObject({ name: raw, sha: sha('raw name') });
      expect(got[3]).toMatchObject({ name: 'x', sha: sha('in a raw dir') });
      expect(got[5]).toMatchObject({ name: longName, size: 4, sha: sha('long') });
      expect(got[6]).toMatchObject({ mode: '120644', target, size: target.length });
      expect(got[7]).toMatchObject({ linkTo: `/${L(hlTarget)}`, size: fmt === 'USTAR' ? 8 : 4 });
      expect(got[8]).toMatchObject({ target: raw, size: RAW.length });
      await expectSameEverywhere(p, got);
    });
  }

  it('GNU base-256 and PAX owners up to 2^32-1; larger is an error unless owners are not kept; PAX mtime ignored', async () => {
    const p = await pyTar('owners.tar', `
t = new(GNU)
add(t, 'b256', b'x', uid=2**32 - 2, gid=2**32 - 1)
t.close()
`);
    expect((await collect(p))[1]).toMatchObject({ uid: 2 ** 32 - 2, gid: 2 ** 32 - 1 });
    const pax = await pyTar('owners-pax.tar', `
t = new(PAX)
add(t, 'paxid', b'x', uid=2**32 - 2, gid=3000000, mtime=1700000000.75)
i = info('badid', uid=5, gid=6)
i.pax_headers = {'uid': 'not-a-number', 'gid': '77', 'mtime': '99.5'}
t.addfile(i)
t.close()
`);
    const got = await collect(pax);
    // tarfile puts the rounded mtime in the header and 1700000000.75 in a PAX record, which is ignored.
    expect(got[1]).toMatchObject({ uid: 2 ** 32 - 2, gid: 3000000, mtime: 1700000001, mtimeNsec: 0 });
    expect(got[2]).toMatchObject({ uid: 5, gid: 77, mtime: 1700000000 });

    const big = await pyTar('owners-big.tar', "t = new(GNU)\nadd(t, 'huge', b'x', uid=2**32 + 5)\nt.close()\n");
    expect((await failure(big)).message).toBe('/huge: uid 4294967301 or gid 0 from tar entry is out of range');
    expect((await collect(big, { explicitUidGid: false }))[1]).toMatchObject({ uid: 2 ** 32 + 5 });
  });

  it('devices and FIFOs carry new_encode_dev(major, minor); modes keep setuid/setgid/sticky', async () => {
    const p = await pyTar('dev.tar', `
t = new(GNU)
add(t, 'null', type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
add(t, 'high', type=tarfile.CHRTYPE, devmajor=259, devminor=300000)
add(t, 'sda1', type=tarfile.BLKTYPE, devmajor=8, devminor=1, mode=0o660)
add(t, 'fifo', type=tarfile.FIFOTYPE, mode=0o600)
add(t, 'suid', b'#!', mode=0o4755)
add(t, 'all', b'', mode=0o7777)
t.close()
`);
    const got = await collect(p);
    expect(got.slice(1).map((g) => [g.path, g.mode, g.rdev, g.size])).toEqual([
      ['/null', '20666', encodeDev(1, 3), 0],
      ['/high', '20644', encodeDev(259, 300000), 0],
      ['/sda1', '60660', encodeDev(8, 1), 0],
      ['/fifo', '10600', 0, 0],
      ['/suid', '104755', 0, 2],
      ['/all', '107777', 0, 0],
    ]);
  });

  it('PAX SCHILY.xattr: raw binary values, sorted names; LIBARCHIVE.xattr ignored; bad names and sizes fail the build', async () => {
    const p = await pyTar('xattrs.tar', `
t = new(PAX)
i = info('x', size=0)
i.pax_headers = {'SCHILY.xattr.user.b': S(b'\\x00\\n\\xff= 9 '), 'SCHILY.xattr.trusted.a': 'v', 'SCHILY.xattr.security.s': '',
  'SCHILY.xattr.system.posix_acl_access': 'acl', 'LIBARCHIVE.xattr.user.ignored': 'eA', 'SCHILY.xattr.user.max': 'v' * 65535}
t.addfile(i)
add(t, 'l', type=tarfile.LNKTYPE, linkname='x')
t.close()
`);
    const got = await collect(p);
    const want = [
      ['security.s', ''],
      ['system.posix_acl_access', Buffer.from('acl').toString('hex')],
      ['trusted.a', Buffer.from('v').toString('hex')],
      ['user.b', Buffer.from([0, 0x0a, 0xff, 0x3d, 0x20, 0x39, 0x20]).toString('hex')],
      ['user.max', Buffer.alloc(65535, 'v').toString('hex')],
    ];
    expect(got[1]!.xattrs).toEqual(want);
    // A hardlink takes its target's xattrs, as upstream copies them.
    expect(got[2]).toMatchObject({ linkTo: '/x', xattrs: want });

    const bad: Array<[string, string]> = [
      ["{'SCHILY.xattr.foo': 'v'}", '/x: invalid xattr key "foo": it must start with user., security., trusted., system.posix_acl_access or system.posix_acl_default'],
      ["{'SCHILY.xattr.system.other': 'v'}", '/x: invalid xattr key "system.other": it must start with user., security., trusted., system.posix_acl_access or system.posix_acl_default'],
      ["{'SCHILY.xattr.user.' + 'k' * 251: 'v'}", `/x: xattr "user.${'k'.repeat(251)}": name of 256 bytes exceeds XATTR_NAME_MAX (255): ${LIMITS.XATTR_NAME_MAX.why}`],
      ["{'SCHILY.xattr.user.v': 'v' * 65536}", `/x: xattr "user.v": value of 65536 bytes exceeds XATTR_VALUE_MAX (65535): ${LIMITS.XATTR_VALUE_MAX.why}`],
    ];
    for (const [headers, message] of bad) {
      const q = await pyTar('bad-xattr.tar', `t = new(PAX)\ni = info('x')\ni.pax_headers = ${headers}\nt.addfile(i)\nt.close()\n`);
      expect((await failure(q)).message).toBe(message);
    }
  });

  it('a malformed PAX record is an error naming where it is', async () => {
    const good = await readFile(await pyTar('pax-ok.tar', "t = new(PAX)\ni = info('x')\ni.pax_headers = {'comment': 'abc'}\nt.addfile(i)\nt.close()\n"));
    // The record "15 comment=abc\\n" claims one byte more than there is.
    const at = good.indexOf(' comment=abc\n') - 2;
    expect(good.toString('latin1', at, at + 2)).toBe('15');
    const bad = Buffer.from(good);
    bad.write('16', at, 'latin1');
    expect((await failure(sliced(bad))).message).toBe(
      '<tar stream>: failed to parse PaxExtension from tar header at tar offset 0 (after the start): pax_record.length = 16: does not end a record with a newline at byte 0',
    );
  });

  it('hardlinks: links to links share the first name; backwards only, regular files only', async () => {
    const p = await pyTar('links.tar', `
t = new()
add(t, 'a', b'AAA', mode=0o640)
add(t, 'b', type=tarfile.LNKTYPE, linkname='a', mode=0o600)
add(t, 'c', type=tarfile.LNKTYPE, linkname='./b')
add(t, 'd/e', type=tarfile.LNKTYPE, linkname='/a')
t.close()
`);
    const got = await collect(p);
    expect(got.map((g) => [g.path, g.mode, g.size, g.linkTo ?? '', g.sha ?? ''])).toEqual([
      ['/', '40755', 0, '', ''],
      ['/a', '100640', 3, '', sha('AAA')],
      ['/b', '100600', 3, '/a', ''],
      ['/c', '100644', 3, '/a', ''],
      ['/d', '40755', 0, '', ''],
      ['/d/e', '100644', 3, '/a', ''],
    ]);
    const errors: Array<[string, string]> = [
      ["add(t, 'l', type=tarfile.LNKTYPE, linkname='f'); add(t, 'f', b'x')", 'unknown target /f for hardlink /l'],
      ["add(t, 'd', type=tarfile.DIRTYPE); add(t, 'l', type=tarfile.LNKTYPE, linkname='d')", 'target /d for hardlink /l is not a regular file'],
      ["add(t, 's', type=tarfile.SYMTYPE, linkname='x'); add(t, 'l', type=tarfile.LNKTYPE, linkname='s')", 'target /s for hardlink /l is not a regular file'],
      ["add(t, 'p', type=tarfile.FIFOTYPE); add(t, 'l', type=tarfile.LNKTYPE, linkname='p')", 'target /p for hardlink /l is not a regular file'],
      ["add(t, 'l', type=tarfile.LNKTYPE, linkname='')", '/l: failed to get hardlink target for tar entry'],
      ["add(t, 's', type=tarfile.SYMTYPE, linkname='')", '/s: failed to get symlink target for tar entry'],
    ];
    for (const [body, message] of errors) {
      expect((await failure(await pyTar('link-err.tar', `t = new()\n${body}\nt.close()\n`))).message).toBe(message);
    }
  });

  it('a name re-archived as a link into its own group keeps its data and takes the link header attributes', async () => {
    const p = await pyTar('relink.tar', `
t = new()
add(t, 'a', b'AAA', mode=0o644)
add(t, 'b', type=tarfile.LNKTYPE, linkname='a')
add(t, 'a', type=tarfile.LNKTYPE, linkname='b', mode=0o600, uid=9)
add(t, 'b', type=tarfile.LNKTYPE, linkname='b', mode=0o640)
add(t, 'z', b'z')
t.close()
`);
    const entries: SourceEntry[] = [];
    for await (const e of tarSource(p)) {
      entries.push(e);
      if (e.open && !e.node.linkTo) await readAll(e.open(), e.node.size, MiB);
    }
    expect(entries.map((e) => L(e.node.path))).toEqual(['/', '/a', '/b', '/z']);
    expect(entries[1]!.node).toMatchObject({ mode: 0o100600, uid: 9, size: 3 });
    expect(entries[2]!.node).toMatchObject({ mode: 0o100640, linkTo: entries[1]!.node });
  });

  it('unsupported entry types fail with upstream wording', async () => {
    const cases: Array<[string, string]> = [
      ["t = new(PAX, pax_headers={'comment': 'global'})\nadd(t, 'f', b'x')", 'unsupported pax_global_extensions from tar header'],
      ["t = new(GNU)\nadd(t, 'c', b'xyz', type=tarfile.CONTTYPE)", '/c: unsupported contiguous entry type from tar header'],
      ["t = new(GNU)\nadd(t, 'v', type=b'V')", "/v: unsupported tar entry type 'V' (0x56)"],
    ];
    for (const [body, message] of cases) {
      expect((await failure(await pyTar('unsupported.tar', `${body}\nt.close()\n`))).message).toContain(message);
    }
  });

  it("'L'/'K'/'x' on a v7 header reach the member check; two of a kind for one member fail", async () => {
    const gnu = await readFile(await pyTar('longname.tar', `t = new(GNU)\nadd(t, 'n' * 150, b'x')\nt.close()\n`));
    // Block 0 is the 'L' header, block 1 its data, block 2 the member.
    expect(String.fromCharCode(gnu[156]!)).toBe('L');
    const v7 = Buffer.from(gnu);
    v7.fill(0, 257, 265);
    v7.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += v7[i]!;
    v7.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect((await failure(sliced(v7))).message).toMatch(/unsupported gnu_longname from tar header$/);
    const twice = Buffer.concat([gnu.subarray(0, 1024), gnu]);
    expect((await failure(sliced(twice))).message).toBe('<tar stream>: two long name entries describing the same member at tar offset 1024 (after the start)');
  });

  it('sizes past 8 GiB (GNU base-256, PAX size) stream through without being held; a partly read file is skipped to its end', async () => {
    const SIZE = 2 ** 33 + 1;
    const gnuHeader = await pyBytes(`info('big', size=${SIZE}).tobuf(GNU, 'utf-8', 'surrogateescape')`);
    const paxHeader = await pyBytes(`info('big', size=${SIZE}).tobuf(PAX, 'utf-8', 'surrogateescape')`);
    expect(gnuHeader[124]).toBe(0x80);
    expect(paxHeader.includes(Buffer.from(`size=${SIZE}\n`))).toBe(true);
    const after = await pyBytes(`info('after', size=6).tobuf(GNU, 'utf-8', 'surrogateescape') + b'after\\n' + bytes(506) + bytes(1024)`);
    const zero = Buffer.alloc(8 * MiB);
    const stream = (header: Buffer) =>
      Readable.from(
        (function* () {
          yield header;
          let left = SIZE - 4;
          while (left > 0) {
            const n = Math.min(left, zero.length);
            yield zero.subarray(0, n);
            left -= n;
          }
          yield Buffer.from('END!');
          yield Buffer.alloc(511);
          yield after;
        })(),
      );
    for (const header of [gnuHeader, paxHeader]) {
      const seen: Array<[string, number, string]> = [];
      for await (const e of tarSource(stream(header))) {
        let content = '';
        if (e.node.size === SIZE) {
          const r = e.open!();
          const head = Buffer.alloc(MiB);
          let got = 0;
          while (got < MiB) {
            const x = r.read(head, got, MiB - got);
            got += typeof x === 'number' ? x : await x;
          }
          r.close();
          content = sha(head) === sha(Buffer.alloc(MiB)) ? 'zeros' : 'wrong';
        } else if (e.open) {
          content = (await readAll(e.open(), e.node.size, MiB)).toString();
        }
        seen.push([L(e.node.path), e.node.size, content]);
      }
      expect(seen).toEqual([['/', 0, ''], ['/big', SIZE, 'zeros'], ['/after', 6, 'after\n']]);
    }
  });
});

describe('streaming behaviour', () => {
  it('pulls the input only as the consumer reads: a 48 MiB member is never buffered whole', async () => {
    const data = prng(1, 48 * MiB);
    const tar = await readFile(await pyTar('stream.tar', `t = new()\nadd(t, 'big', bytes(${data.length}))\nadd(t, 'next', b'next')\nt.close()\n`));
    data.copy(tar, 512);
    let produced = 0;
    const src = Readable.from(
      (function* () {
        for (let at = 0; at < tar.length; at += 64 * 1024) {
          produced = Math.min(tar.length, at + 64 * 1024);
          yield tar.subarray(at, produced);
        }
      })(),
    );
    const seen: string[] = [];
    for await (const e of tarSource(src)) {
      seen.push(L(e.node.path));
      if (L(e.node.path) !== '/big') continue;
      expect(produced).toBeLessThan(4 * MiB);
      const r = e.open!();
      const buf = Buffer.alloc(e.node.size);
      let got = 0;
      while (got < 24 * MiB) {
        const x = r.read(buf, got, Math.min(MiB, 24 * MiB - got));
        got += typeof x === 'number' ? x : await x;
      }
      expect(produced).toBeLessThan(28 * MiB);
      while (got < buf.length) {
        const x = r.read(buf, got, buf.length - got);
        got += typeof x === 'number' ? x : await x;
      }
      expect(buf.equals(data)).toBe(true);
    }
    expect(seen).toEqual(['/', '/big', '/next']);
  });

  it('content is readable only while its entry is current, and opened once', async () => {
    const p = await pyTar('once.tar', "t = new()\nadd(t, 'a', b'A' * 5000)\nadd(t, 'b', b'B')\nt.close()\n");
    let first: SourceEntry | undefined;
    for await (const e of tarSource(p)) {
      if (L(e.node.path) === '/a') {
        first = e;
        const r = e.open!();
        const x = r.read(Buffer.alloc(10), 0, 10);
        expect(typeof x === 'number' ? x : await x).toBe(10);
        expect(() => e.open!()).toThrow(/opened twice/);
      } else if (first && L(e.node.path) === '/b') {
        expect(() => first!.open!()).toThrow(/after the source moved on|opened twice/);
        // The rest of /a was skipped: /b reads its own byte.
        expect((await readAll(e.open!(), 1, 1)).toString()).toBe('B');
      }
    }
  });

  it('reads a tar and a tar.gz from a FIFO fed by another process', async () => {
    const tarPath = join(FIXTURES, 'all-entry-type.tar');
    const expected = await collect(tarPath);
    for (const [name, file] of [['plain', tarPath], ['gzip', `${work}/fifo-src.tar.gz`]] as const) {
      if (name === 'gzip') await writeFile(file, multiGzip(await readFile(tarPath)));
      const fifo = join(work, `fifo-${name}`);
      await runOk('mkfifo', [fifo]);
      const writer = run('sh', ['-c', 'cat "$1" > "$2"', 'sh', file, fifo]);
      expect(await collect(fifo)).toEqual(expected);
      expect((await writer).code).toBe(0);
    }
  });

  it("reads stdin for '-' and '/dev/stdin' (a child process, so the test runner's stdin is left alone)", async () => {
    const repo = new URL('../../', import.meta.url).pathname;
    const script = join(work, 'stdin.mts');
    await writeFile(script, [
      `import { tarSource } from ${JSON.stringify(`${repo}src/sources/tar.ts`)};`,
      'const out = [];',
      'for await (const e of tarSource(process.argv[2])) out.push(e.node.path.toString());',
      'console.log(JSON.stringify(out));',
    ].join('\n'));
    const tar = await readFile(join(FIXTURES, 'all-entry-type.tar'));
    const expected = (await collect(join(FIXTURES, 'all-entry-type.tar'))).map((g) => g.path);
    for (const [arg, input] of [['-', zlib.gzipSync(tar)], ['/dev/stdin', tar]] as const) {
      const r = await runOk(process.execPath, ['--import', 'tsx', script, arg], { cwd: repo, input, timeoutMs: 60_000 });
      expect(JSON.parse(r.stdout.toString())).toEqual(expected);
    }
  });

  it('GNU sparse members are refused as upstream does when asked to (tarfs cannot point into them)', async () => {
    const d = join(work, 'sparse');
    await mkdir(d);
    await writeFile(join(d, 'holes'), 'x');
    await truncate(join(d, 'holes'), 4 * MiB);
    const out = join(work, 'sparse.tar');
    await runOk('tar', ['--format=gnu', '--sparse', '-C', d, '-cf', out, 'holes']);
    expect((await failure(out, { sparse: 'refuse' })).message).toBe('/holes: unsupported gnu sparse file extension from tar header');
  });
});

/** Every entry a source yields, by path, with the content of each name (a link's from its group's first name). */
async function treeOf(source: AsyncIterable<SourceEntry>): Promise<Map<string, Got & { content?: string; group?: string }>> {
  const out = new Map<string, Got & { content?: string; group?: string }>();
  const shaOf = new Map<TreeNode, string>();
  for await (const e of source) {
    const g: Got & { content?: string; group?: string } = describeEntry(e);
    delete g.parent;
    delete g.replaces;
    delete g.linkTo;
    if (e.open && !e.node.linkTo) shaOf.set(e.node, sha(await readAll(e.open(), e.node.size, MiB)));
    const carrier = e.node.linkTo ?? e.node;
    g.content = shaOf.get(carrier);
    g.group = e.node.linkTo ? L(e.node.linkTo.path) : undefined;
    out.set(g.path, g);
  }
  // Hardlink groups as sets of names, whichever name each source met first.
  const groups = new Map<string, string[]>();
  for (const g of out.values()) if (g.group) groups.set(g.group, [...(groups.get(g.group) ?? [g.group]), g.path]);
  for (const names of groups.values()) for (const n of names) out.get(n)!.group = [...names].sort().join('|');
  return out;
}

/** GNU tar of a directory must read as the directory source reads the directory (mtime in whole seconds). */
async function expectTarMatchesDir(dir: string, tarInput: string | NodeJS.ReadableStream, opts: { xattrs: boolean; skip?: (path: string) => boolean }): Promise<number> {
  const fromDir = await treeOf(dirSource(dir));
  const fromTar = await treeOf(tarSource(tarInput));
  for (const [path, d] of fromDir) {
    if (opts.skip?.(path)) {
      expect(fromTar.has(path)).toBe(false);
      continue;
    }
    const t = fromTar.get(path);
    expect(t, path).toBeDefined();
    const want = { ...d, mtimeNsec: 0, xattrs: opts.xattrs ? d.xattrs : [] };
    expect(t, path).toEqual(want);
  }
  expect([...fromTar.keys()].filter((p) => !fromDir.has(p))).toEqual([]);
  return fromTar.size;
}

describe('GNU tar as the judge', () => {
  let small = '';
  beforeAll(async () => {
    if (!isRoot) return;
    small = join(work, 'small');
    const f = (p: string) => join(small, p);
    await mkdir(small);
    await mkdir(f('dir'));
    await writeFile(f('dir/empty'), '');
    await writeFile(f('dir/one'), 'x');
    await writeFile(f('dir/block'), prng(2, 512));
    await writeFile(f('dir/block1'), prng(3, 513));
    await writeFile(f('dir/big.bin'), prng(4, MiB + 1));
    await writeFile(f('xattr.txt'), 'xattrs\n');
    await runOk('setfattr', ['-n', 'user.plain', '-v', 'hello', f('xattr.txt')]);
    await runOk('setfattr', ['-n', 'user.bin', '-v', '0x0a00ff3d0a', f('xattr.txt')]);
    await runOk('setfattr', ['-n', 'trusted.t', '-v', '1', f('xattr.txt')]);
    await runOk('setfattr', ['-n', 'user.onedir', '-v', 'd', f('dir')]);
    await symlink('dir/one', f('link'));
    await symlink('T'.repeat(100), f('longtarget'));
    await writeFile(f('hard1'), prng(5, 70_000));
    await link(f('hard1'), f('dir/hard2'));
    await link(f('hard1'), f('hard3'));
    const longDir = f('l'.repeat(90));
    await mkdir(longDir);
    await writeFile(join(longDir, 'f'.repeat(50)), 'long path');
    await writeFile(Buffer.from(`${small}/\xff\xfeA`, 'latin1'), 'raw name');
    await mknod(f('chr'), 'char', 0o620, 1, 3);
    await mknod(f('highminor'), 'char', 0o600, 259, 300_000);
    await mknod(f('blk'), 'block', 0o660, 8, 1);
    await mknod(f('fifo'), 'fifo', 0o600);
    await writeFile(f('suid'), '#!/bin/sh\n');
    await chown(f('suid'), 70000, 1001);
    await chmod(f('suid'), 0o4755);
    await chown(f('dir'), 1000, 1001);
    await chmod(f('dir'), 0o750);
    await setMtimeNs(f('dir/one'), 1_234_567_890_987_654_321n);
    await setMtimeNs(f('dir'), 1_500_000_000_000_000_000n);
    await setMtimeNs(small, 1_600_000_000_000_000_000n);
  });

  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    it(`tar --format=${format}${format === 'pax' ? ' --xattrs' : ''} reads as the directory does`, async (ctx) => {
      if (!small) return skipLoudly(ctx, 'building the tree needs root (mknod, chown, trusted.* xattrs)');
      const out = join(work, `small-${format}.tar`);
      const xattrs = format === 'pax' ? ['--xattrs', '--xattrs-include=*'] : [];
      await runOk('tar', [`--format=${format}`, ...xattrs, '--sort=name', '-C', small, '-cf', out, '.']);
      const n = await expectTarMatchesDir(small, out, { xattrs: format === 'pax' });
      expect(n).toBe(21);
      if (format === 'gnu') await expectSameEverywhere(out, await collect(out), 'small');
    });
  }

  it('a path listed twice becomes a link to itself: one name, data intact', async (ctx) => {
    if (!small) return skipLoudly(ctx, 'needs the tree built as root');
    const out = join(work, 'twice.tar');
    await runOk('tar', ['--format=gnu', '-C', small, '-cf', out, 'hard1', 'hard1', 'dir/one']);
    const listing = (await runOk('tar', ['-tvf', out])).stdout.toString();
    expect(listing).toMatch(/hard1 link to hard1/);
    const got = await collect(out);
    expect(got.map((g) => [g.path, g.sha ?? ''])).toEqual([
      ['/', ''],
      ['/hard1', sha(await readFile(join(small, 'hard1')))],
      ['/dir', ''],
      ['/dir/one', sha('x')],
    ]);
  });

  it('the hostile tree through tar --format=pax --xattrs, multi-member gzip in odd slices', async (ctx) => {
    if (!isRoot) return skipLoudly(ctx, 'building the hostile tree needs root');
    const root = join(work, 'hostile');
    const manifest: TreeManifest = await buildHostileTree(root, { manyEntries: 400 });
    const out = join(work, 'hostile.tar');
    const r = await run('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '--sort=name', '-C', root, '-cf', out, '.']);
    // GNU tar warns about the socket it leaves out (exit 0 or 1 with only that warning).
    expect(r.stderr.toString().trim().split('\n').filter((l) => l && !/socket ignored/.test(l))).toEqual([]);
    const sockets = new Set(manifest.byKind.socket.map((p) => `/${L(p)}`));
    const input = sliced(multiGzip(await readFile(out)), [4093, 1, 65536, 77]);
    const n = await expectTarMatchesDir(root, input, { xattrs: true, skip: (p) => sockets.has(p) });
    expect(n).toBe(manifest.counts.total - manifest.counts.socket + 1);
  });
});
