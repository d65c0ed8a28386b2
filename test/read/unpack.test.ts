// `unpack` judged from outside: the hostile tree built into images (zstd, lz4_block, none),
// unpacked, extracted by GNU tar as root and compared with the source; every header of the
// stream read back by a small independent parser; the upstream fixture's two files checked
// against the digests upstream recorded; a FIFO reader sees what a file gets; failures leave
// no output behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM } from '../helpers/upstream.js';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { create } from '../../src/builder/create.js';
import { NydusError } from '../../src/errors.js';
import { openImage } from '../../src/read/open.js';
import {
  decodeDev, encodeEntryHeader, encodeUstar, paxHeaderName, paxRecord, truncateName, unpack, validUtf8Prefix,
} from '../../src/read/unpack.js';
import { compareTrees } from '../helpers/compare.js';
import { skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { hasTool, run, runOk } from '../helpers/tools.js';
import { buildHostileTree, joinPath, type TreeManifest } from '../helpers/tree.js';

const V6_BOOT = join(UPSTREAM, 'bootstrap/rafs-v6-2.2.boot');
const V6_BLOBS = join(UPSTREAM, 'blobs');
const V6_BLOB = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';

// ---------------------------------------------------------------------------------------------
// An independent reader of what unpack writes: every 512-byte header, PAX records attached to
// the entry they precede, checksums and the end-of-archive checked on the way.

interface TarEntry {
  offset: number;
  header: Buffer;
  /** The name field as stored (up to 100 bytes). */
  rawName: Buffer;
  /** PAX path when present, else the name field. */
  path: Buffer;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  rawLinkname: Buffer;
  linkname: Buffer;
  uname: string;
  gname: string;
  devmajor: Buffer;
  devminor: Buffer;
  data: Buffer;
  /** The preceding `x` entry: its header and records in order. */
  pax?: { header: Buffer; name: Buffer; records: Array<[string, Buffer]>; raw: Buffer };
}

function cstr(b: Buffer): Buffer {
  const nul = b.indexOf(0);
  return Buffer.from(nul < 0 ? b : b.subarray(0, nul));
}

function num(f: Buffer): number {
  if ((f[0]! & 0x80) !== 0) return Number(f.readBigUInt64BE(f.length - 8) & ((1n << 63n) - 1n));
  const s = f.toString('latin1').replace(/[\0 ]+$/, '');
  if (!/^[0-7]+$/.test(s)) throw new Error(`bad octal field ${JSON.stringify(f.toString('latin1'))}`);
  return parseInt(s, 8);
}

function parsePax(data: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    const len = parseInt(data.toString('latin1', off, sp), 10);
    const rec = data.subarray(off, off + len);
    expect(rec[rec.length - 1]).toBe(0x0a);
    const eq = rec.indexOf(0x3d, sp - off);
    out.push([rec.toString('latin1', sp - off + 1, eq), Buffer.from(rec.subarray(eq + 1, rec.length - 1))]);
    off += len;
  }
  return out;
}

function parseTar(buf: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let off = 0;
  let pax: TarEntry['pax'];
  for (;;) {
    if (off + 1024 > buf.length) throw new Error(`no end-of-archive blocks (at ${off} of ${buf.length})`);
    const h = buf.subarray(off, off + 512);
    if (h.every((c) => c === 0)) {
      // Exactly two zero blocks and nothing after them: no 10 KiB record padding.
      expect(buf.subarray(off + 512, off + 1024).every((c) => c === 0)).toBe(true);
      expect(off + 1024).toBe(buf.length);
      expect(pax).toBeUndefined();
      return entries;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    expect(h.toString('latin1', 148, 156)).toBe(`${sum.toString(8).padStart(6, '0')}\0 `);
    expect(h.toString('latin1', 257, 265)).toBe('ustar\x0000');
    expect(h.subarray(345, 500).every((c) => c === 0)).toBe(true); // prefix never used
    const size = num(h.subarray(124, 136));
    const data = Buffer.from(buf.subarray(off + 512, off + 512 + size));
    const typeflag = String.fromCharCode(h[156]!);
    const next = off + 512 + Math.ceil(size / 512) * 512;
    if (typeflag === 'x') {
      expect(pax).toBeUndefined();
      pax = { header: Buffer.from(h), name: cstr(h.subarray(0, 100)), records: parsePax(data), raw: data };
      off = next;
      continue;
    }
    const rawName = cstr(h.subarray(0, 100));
    const rawLinkname = cstr(h.subarray(157, 257));
    const rec = new Map(pax?.records ?? []);
    entries.push({
      offset: off, header: Buffer.from(h), rawName, path: rec.get('path') ?? rawName, typeflag,
      mode: num(h.subarray(100, 108)), uid: num(h.subarray(108, 116)), gid: num(h.subarray(116, 124)), size,
      mtime: num(h.subarray(136, 148)), rawLinkname, linkname: rec.get('linkpath') ?? rawLinkname,
      uname: cstr(h.subarray(265, 297)).toString('latin1'), gname: cstr(h.subarray(297, 329)).toString('latin1'),
      devmajor: Buffer.from(h.subarray(329, 337)), devminor: Buffer.from(h.subarray(337, 345)), data, pax,
    });
    pax = undefined;
    off = next;
  }
}

// ---------------------------------------------------------------------------------------------

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-unpack-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the tar codec', () => {
  it('a ustar header: 512 bytes, octal fields ending in NUL, checksum as six digits, NUL, space', () => {
    const h = encodeUstar({
      name: Buffer.from('a/b'), mode: 0o4755, uid: 1000, gid: 65536, size: 16931, mtime: 1676819553, typeflag: 0x30,
      uname: Buffer.from('u'), gname: Buffer.from('g'), devmajor: 0, devminor: 0,
    });
    expect(h.length).toBe(512);
    expect(h.toString('latin1', 100, 108)).toBe('0004755\0');
    expect(h.toString('latin1', 108, 116)).toBe('0001750\0');
    expect(h.toString('latin1', 116, 124)).toBe('0200000\0');
    expect(h.toString('latin1', 124, 136)).toBe('00000041043\0');
    expect(h.toString('latin1', 136, 148)).toBe('14374436141\0');
    expect(h.toString('latin1', 257, 265)).toBe('ustar\x0000');
    expect(h.toString('latin1', 329, 345)).toBe('0000000\x000000000\0');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    expect(h.toString('latin1', 148, 156)).toBe(`${sum.toString(8).padStart(6, '0')}\0 `);
  });

  it('uid/gid from 2^21 and size/mtime from 2^33 in GNU base-256, as the tar crate writes them', () => {
    const h = encodeUstar({ name: Buffer.from('x'), mode: 0, uid: 2 ** 21 - 1, gid: 4294967294, size: 8 * 1024 ** 3, mtime: 2 ** 33 - 1, typeflag: 0x30 });
    expect(h.toString('latin1', 108, 116)).toBe('7777777\0');
    expect(h.subarray(116, 124).toString('hex')).toBe('80000000fffffffe');
    expect(h.subarray(124, 136).toString('hex')).toBe('800000000000000200000000');
    expect(h.toString('latin1', 136, 148)).toBe('77777777777\0');
    // The PAX entry's header leaves devmajor/devminor, uname and gname all NUL.
    expect(h.subarray(265, 345).every((c) => c === 0)).toBe(true);
  });

  it('PAX records count their own length, across a change in its number of digits', () => {
    expect(paxRecord(Buffer.from('path'), Buffer.from('a')).toString()).toBe('9 path=a\n');
    for (let n = 0; n < 1200; n++) {
      const r = paxRecord(Buffer.from('path'), Buffer.alloc(n, 0x61));
      expect(parseInt(r.toString('latin1', 0, r.indexOf(0x20)), 10)).toBe(r.length);
    }
  });

  it('names cut to 100 bytes back to valid UTF-8, as Rust\'s valid_up_to', () => {
    expect(validUtf8Prefix(Buffer.from('café'))).toBe(5);
    expect(validUtf8Prefix(Buffer.from([0x61, 0xc3]))).toBe(1); // cut sequence
    expect(validUtf8Prefix(Buffer.from([0x61, 0xff, 0x62]))).toBe(1);
    expect(validUtf8Prefix(Buffer.from([0x61, 0xed, 0xa0, 0x80]))).toBe(1); // surrogate
    expect(validUtf8Prefix(Buffer.from([0x61, 0xe0, 0x80, 0x80]))).toBe(1); // overlong
    expect(validUtf8Prefix(Buffer.from([0xf0, 0x9f, 0x98, 0x80]))).toBe(4);
    const long = Buffer.concat([Buffer.alloc(99, 0x61), Buffer.from('é')]);
    expect(truncateName(long).toString()).toBe('a'.repeat(99));
    expect(truncateName(Buffer.alloc(150, 0xff))).toEqual(Buffer.alloc(100, 0xff));
  });

  it('the PAX entry is named <dir>/PaxHeaders.0/<base> of the main name', () => {
    expect(paxHeaderName(Buffer.from('a/b/c')).toString()).toBe('a/b/PaxHeaders.0/c');
    expect(paxHeaderName(Buffer.from('top')).toString()).toBe('PaxHeaders.0/top');
    expect(paxHeaderName(Buffer.from(`d/${'n'.repeat(98)}`)).toString()).toBe(`d/PaxHeaders.0/${'n'.repeat(98)}`.slice(0, 100));
  });

  it('an entry: PAX only when needed, records sorted by key (SCHILY before linkpath before path)', () => {
    const plain = encodeEntryHeader({ path: Buffer.from('f'), mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: 0x30, xattrs: [] });
    expect(plain.length).toBe(512);
    const longPath = Buffer.from(`d/${'p'.repeat(120)}`);
    const longLink = Buffer.from(`/${'l'.repeat(120)}`);
    const b = encodeEntryHeader({
      path: longPath, link: longLink, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 5, typeflag: 0x31,
      xattrs: [{ name: Buffer.from('user.z'), value: Buffer.from('1') }, { name: Buffer.from('trusted.a'), value: Buffer.from([0, 10]) }],
    });
    const entries = parseTar(Buffer.concat([b, Buffer.alloc(1024)]));
    expect(entries).toHaveLength(1);
    const e = entries[0]!;
    expect(e.pax!.records.map(([k]) => k)).toEqual(['SCHILY.xattr.trusted.a', 'SCHILY.xattr.user.z', 'linkpath', 'path']);
    expect(e.path).toEqual(longPath);
    expect(e.linkname).toEqual(longLink);
    expect(e.rawName).toEqual(longPath.subarray(0, 100));
    expect(e.rawLinkname).toEqual(longLink.subarray(0, 100));
    expect(e.pax!.name.toString()).toBe(`d/PaxHeaders.0/${'p'.repeat(98)}`.slice(0, 100));
    const ph = e.pax!.header;
    expect(ph.toString('latin1', 100, 124)).toBe('0000644\x000000000\x000000000\0');
    expect(ph.toString('latin1', 136, 148)).toBe('00000000000\0');
    expect(num(ph.subarray(124, 136))).toBe(e.pax!.raw.length);
  });

  it('device numbers decoded glibc-style from the new_encode_dev form', () => {
    const enc = (major: number, minor: number) => (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
    expect(decodeDev(enc(1, 3))).toEqual({ major: 1, minor: 3 });
    expect(decodeDev(enc(259, 300_000))).toEqual({ major: 259, minor: 300_000 });
    expect(decodeDev(enc(4095, 0xfffff) >>> 0)).toEqual({ major: 4095, minor: 0xfffff });
  });
});

describe('unpack of the upstream RAFS v6 fixture (rafs-v6-2.2.boot)', () => {
  it('writes its two files with the bytes upstream recorded (blake3 chunk digests), and nothing else', async () => {
    const out = join(work, 'fixture.tar');
    await unpack({ bootstrap: V6_BOOT, blobDir: V6_BLOBS, output: out });
    const entries = parseTar(await readFile(out));
    expect(entries.map((e) => [e.path.toString(), e.typeflag, e.size, e.mode, e.uid, e.gid, e.mtime, e.uname, e.gname])).toEqual([
      ['lib.rs', '0', 16931, 0o644, 0, 0, 1676819553, 'root', 'root'],
      ['sync_io.rs', '0', 13400, 0o644, 0, 0, 1676819553, 'root', 'root'],
    ]);
    expect(blake3(entries[0]!.data).toString('hex')).toBe('f7e2735f1c6ae9cde91e537416b09d8bb71b306a421d19cc1012a51f93a7fe69');
    expect(blake3(entries[1]!.data).toString('hex')).toBe('812465bcc9e88393598311dc5fc93abaeccef0185bcd99f9701d17ebdf9adc3f');
    expect(entries[0]!.data.toString('latin1', 0, 40)).toBe('// Copyright (C) 2020 Alibaba Cloud. All');
    // --blob names the one blob file directly; verification finds every digest right.
    const viaBlob = join(work, 'fixture-blob.tar');
    await unpack({ bootstrap: V6_BOOT, blob: join(V6_BLOBS, V6_BLOB), output: viaBlob, verify: true });
    expect((await readFile(viaBlob)).equals(await readFile(out))).toBe(true);
    if (hasTool('tar')) {
      const listed = await runOk('tar', ['-tvf', out]);
      expect(listed.stdout.toString()).toMatch(/^-rw-r--r-- root\/root +16931 .* lib\.rs\n-rw-r--r-- root\/root +13400 .* sync_io\.rs\n$/);
    }
  });

  it('fails in one line, before any output exists, when the blob is missing; an old output stays as it was', async () => {
    const dir = join(work, 'missing');
    await mkdir(dir);
    const out = join(dir, 'out.tar');
    const err = await unpack({ bootstrap: V6_BOOT, blobDir: join(work, 'no-blobs-here'), output: out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NydusError);
    expect((err as NydusError).message).toMatch(new RegExp(`${V6_BLOB}: no such file or directory$`));
    expect((err as NydusError).message).not.toContain('\n');
    expect(await readdir(dir)).toEqual([]);
    await writeFile(out, 'old');
    await expect(unpack({ bootstrap: V6_BOOT, blobDir: dir, output: out })).rejects.toThrow(/no such file/);
    expect(await readdir(dir)).toEqual(['out.tar']);
    expect(await readFile(out, 'utf8')).toBe('old');
  });

  it('RAFS v5 (sha256-nocompress-repeatable): every chunk verified, the hard link named with its leading /', async () => {
    const repeatable = join(UPSTREAM, 'repeatable');
    const out = join(work, 'v5.tar');
    await unpack({ bootstrap: join(repeatable, 'sha256-nocompress-repeatable'), blobDir: join(repeatable, 'blobs'), output: out, verify: true });
    const entries = parseTar(await readFile(out));
    expect(entries).toHaveLength(53);
    const foo = entries.find((e) => e.path.toString() === 'hardlink-test/foo')!;
    const sh = entries.find((e) => e.path.toString() === 'hardlink-test/test.sh')!;
    expect([foo.typeflag, foo.size]).toEqual(['0', 944]);
    expect([sh.typeflag, sh.linkname.toString(), sh.size]).toEqual(['1', 'hardlink-test/foo', 0]);
  });

  it('refuses an empty output path and a directory as output', async () => {
    await expect(unpack({ bootstrap: V6_BOOT, blobDir: V6_BLOBS, output: '' })).rejects.toThrow('invalid empty --output option');
    await expect(unpack({ bootstrap: V6_BOOT, blobDir: V6_BLOBS, output: work })).rejects.toThrow(/is a directory/);
  });
});

// ---------------------------------------------------------------------------------------------
// The hostile tree, three ways.

const isRoot = process.getuid?.() === 0;
let src = '';
let manifest: TreeManifest | undefined;
let treeBuilt: Promise<TreeManifest> | undefined;

function hostileTree(): Promise<TreeManifest> {
  treeBuilt ??= (async () => {
    src = join(work, 'src');
    manifest = await buildHostileTree(src);
    return manifest;
  })();
  return treeBuilt;
}

async function need(ctx: SkipContext): Promise<TreeManifest> {
  if (!isRoot) return skipLoudly(ctx, 'the hostile tree and GNU tar extraction need root');
  if (!hasTool('tar')) return skipLoudly(ctx, 'GNU tar is not on PATH');
  return hostileTree();
}

interface Built {
  boot: string;
  /** Where the blob is: a file for --blob, a directory for --blob-dir. */
  blob?: string;
  blobDir?: string;
}

const builds = new Map<string, Promise<Built>>();
function build(compressor: 'zstd' | 'lz4_block' | 'none'): Promise<Built> {
  let b = builds.get(compressor);
  if (!b) {
    b = (async () => {
      const dir = join(work, `build-${compressor}`);
      await mkdir(dir);
      const boot = join(dir, 'boot');
      // zstd goes through --blob-dir (the blob named by its id); the others through --blob FILE.
      if (compressor === 'zstd') {
        const blobDir = join(dir, 'blobs');
        await mkdir(blobDir);
        await create({ source: src, bootstrap: boot, blobDir, compressor });
        return { boot, blobDir };
      }
      const blob = join(dir, 'blob');
      await create({ source: src, bootstrap: boot, blob, compressor });
      return { boot, blob };
    })();
    builds.set(compressor, b);
  }
  return b;
}

/** GNU tar as root, restoring owners, modes and xattrs; its stderr is returned. */
async function extract(tarFile: string, dest: string): Promise<string> {
  await mkdir(dest);
  // The root is not in the tar: the directory is made like the source root (0755 root:root).
  await chmod(dest, 0o755);
  const r = await runOk('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-owner', '--same-permissions', '-xf', tarFile, '-C', dest]);
  return r.stderr.toString();
}

/** mtimes compared to the second (a tar header has no nanoseconds), every entry but the root. */
async function mtimeSecondDiffs(expected: string, actual: string, ignore: (rel: Buffer) => boolean): Promise<string[]> {
  const diffs: string[] = [];
  const visit = async (rel: Buffer): Promise<void> => {
    for (const name of await readdir(joinPath(expected, rel), { encoding: 'buffer' })) {
      const c = rel.length === 0 ? name : Buffer.concat([rel, Buffer.from('/'), name]);
      if (ignore(c)) continue;
      const [e, a] = await Promise.all([lstat(joinPath(expected, c), { bigint: true }), lstat(joinPath(actual, c), { bigint: true })]);
      if (e.mtimeNs / 1_000_000_000n !== a.mtimeNs / 1_000_000_000n) diffs.push(`${c.toString()}: mtime ${e.mtimeNs} vs ${a.mtimeNs}`);
      if (e.isDirectory()) await visit(c);
    }
  };
  await visit(Buffer.alloc(0));
  return diffs;
}

describe('unpack of the hostile tree, extracted by GNU tar as root', () => {
  for (const compressor of ['zstd', 'lz4_block', 'none'] as const) {
    it(`${compressor}: the extracted tree equals the source but for the root and sockets, mtimes to the second`, async (ctx) => {
      const m = await need(ctx);
      const b = await build(compressor);
      const out = join(work, `hostile-${compressor}.tar`);
      await unpack({ bootstrap: b.boot, blob: b.blob, blobDir: b.blobDir, output: out });
      const dest = join(work, `extracted-${compressor}`);
      const stderr = await extract(out, dest);
      // Hard links name their first member relative (upstream's leading '/' is dropped: Python's
      // tarfile would join it to nothing). GNU tar notes the times past now (y2038, y2106);
      // nothing else may be said.
      const said = stderr.split('\n').filter((l) => l !== '' && !/: time stamp .* in the future$/.test(l));
      expect(said).toEqual([]);
      const sockets = new Set(m.byKind.socket.map((p) => p.toString('latin1')));
      const ignore = (rel: Buffer) => sockets.has(rel.toString('latin1'));
      // compareTrees options: sockets are not written (ignore); the root is not in the tar, so
      // its mtime is not compared (the extraction directory is made 0755 root:root like the
      // source root, so its other fields match by construction); mtimes are compared below to
      // the second, since a ustar header has whole seconds only. Everything else is compared:
      // names, types, modes, owners, sizes, contents, link counts, symlink targets, rdev,
      // xattrs and hard-link structure.
      expect(await compareTrees(src, dest, { ignoreRootMtime: true, skip: ['mtime'], ignore })).toEqual([]);
      expect(await mtimeSecondDiffs(src, dest, ignore)).toEqual([]);
    });
  }

  it('headers: pre-order, names in byte order, no root or socket, links, devices, owners and PAX as upstream', async (ctx) => {
    const m = await need(ctx);
    const b = await build('zstd');
    const out = join(work, 'hostile-headers.tar');
    await unpack({ bootstrap: b.boot, blobDir: b.blobDir, output: out });
    const entries = parseTar(await readFile(out));
    const paths = entries.map((e) => e.path.toString('latin1'));

    // Every source path but the sockets, once each, parents first and siblings in byte order.
    const expected = m.entries.filter((p) => !m.byKind.socket.some((s) => s.equals(p)));
    expect(new Set(paths)).toEqual(new Set(expected.map((p) => p.toString('latin1'))));
    expect(paths).toHaveLength(expected.length);
    const sorted = [...entries.map((e) => e.path)].sort((x, y) => {
      const xs = x.toString('latin1').split('/');
      const ys = y.toString('latin1').split('/');
      for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
        const c = Buffer.compare(Buffer.from(xs[i]!, 'latin1'), Buffer.from(ys[i]!, 'latin1'));
        if (c !== 0) return c;
      }
      return xs.length - ys.length;
    });
    expect(paths).toEqual(sorted.map((p) => p.toString('latin1')));
    expect(paths.some((p) => p === '' || p.startsWith('/') || p.endsWith('/'))).toBe(false);

    const byPath = new Map(entries.map((e) => [e.path.toString('latin1'), e]));
    const get = (p: string | Buffer) => byPath.get(typeof p === 'string' ? p : p.toString('latin1'))!;

    // Hard links: the first member in walk order is a file, later ones typeflag 1 naming it with '/'.
    expect(get('hard/a/one').typeflag).toBe('0');
    expect(get('hard/a/one').size).toBe(70_000);
    for (const p of ['hard/b/two', 'links/three']) {
      const e = get(p);
      expect([e.typeflag, e.linkname.toString(), e.size, e.uid, e.gid]).toEqual(['1', 'hard/a/one', 0, 1001, 1002]);
      expect(e.pax!.records.map(([k]) => k)).toEqual(['SCHILY.xattr.user.hardlinked']);
    }
    expect(get('hard/b/empty-two').typeflag).toBe('0');
    expect([get('hard/empty-one').typeflag, get('hard/empty-one').linkname.toString()]).toEqual(['1', 'hard/b/empty-two']);

    // Long names: PAX path, the name field the first 100 bytes cut back to valid UTF-8.
    const longLatin = Buffer.concat([Buffer.from('names/'), Buffer.alloc(200, 'z'), Buffer.from([0xe9]), Buffer.alloc(54, 'y')]);
    const ll = get(longLatin);
    expect(ll.rawName.toString()).toBe(`names/${'z'.repeat(94)}`);
    expect(ll.pax!.records.map(([k]) => k)).toEqual(['path']);
    expect(ll.pax!.name.toString()).toBe(`names/PaxHeaders.0/${'z'.repeat(94)}`.slice(0, 100));
    const a255 = get(`names/${'a'.repeat(255)}`);
    expect(a255.rawName.toString()).toBe(`names/${'a'.repeat(94)}`);
    // Short non-UTF-8 names go in the name field as raw bytes.
    expect(get(Buffer.from([...Buffer.from('names/'), 0xff, 0xfe, 0x41])).rawName).toEqual(Buffer.from([...Buffer.from('names/'), 0xff, 0xfe, 0x41]));

    // Symlinks: a long target in PAX linkpath; short ones raw in linkname.
    const long = get('links/long');
    expect([long.typeflag, long.size, long.linkname.length]).toEqual(['2', 0, 4000]);
    expect(long.rawLinkname.length).toBe(100);
    expect(long.pax!.records.map(([k]) => k)).toEqual(['linkpath']);
    expect(get('links/non-utf8-target').linkname).toEqual(Buffer.from([...Buffer.from('../names/'), 0xff, 0xfe, 0x41]));

    // Devices and FIFOs.
    const dev = (e: TarEntry) => [e.typeflag, e.devmajor.toString('latin1'), e.devminor.toString('latin1')];
    expect(dev(get('special/null'))).toEqual(['3', '0000001\0', '0000003\0']);
    expect(dev(get('special/high-minor'))).toEqual(['3', '0000403\0', '1111740\0']);
    expect(dev(get('special/loop0'))).toEqual(['4', '0000007\0', '0000000\0']);
    expect(dev(get('special/sda1'))).toEqual(['4', '0000010\0', '0000001\0']);
    expect(dev(get('special/fifo'))).toEqual(['6', '0000000\0', '0000000\0']);
    expect(dev(get('files'))).toEqual(['5', '0000000\0', '0000000\0']);

    // Modes keep the setuid, setgid and sticky bits and nothing of the type.
    expect(get('modes/all-bits').mode).toBe(0o7777);
    expect(get('modes/sticky-dir').mode).toBe(0o1777);
    // Owners: numbers as set (base-256 past 2^21); names from this host's passwd/group, or none.
    const umax = get('owners/umax');
    expect([umax.uid, umax.gid]).toEqual([4294967294, 4294967294]);
    expect(umax.header[108]! & 0x80).toBe(0x80);
    expect([get('owners/root').uname, get('owners/root').gname]).toEqual(['root', 'root']);
    expect([umax.uname, umax.gname]).toEqual(['', '']);
    // Times in whole seconds, past 2^32 still octal.
    expect(get('times/y2106').mtime).toBe(2 ** 32 + 5);
    expect(get('times/ns').mtime).toBe(1_700_000_000);

    // Xattrs as SCHILY.xattr records, sorted, values byte for byte.
    const xf = get('xattrs/file');
    expect(xf.pax!.records.map(([k]) => k)).toEqual([
      'SCHILY.xattr.security.nydus-test', 'SCHILY.xattr.trusted.overlay.opaque', 'SCHILY.xattr.user.binary',
      'SCHILY.xattr.user.empty', 'SCHILY.xattr.user.plain',
    ]);
    expect(new Map(xf.pax!.records).get('SCHILY.xattr.user.binary')).toEqual(Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    expect(xf.pax!.name.toString()).toBe('xattrs/PaxHeaders.0/file');
    expect(get('xattrs/dir').typeflag).toBe('5');
  });

  it('a FIFO read by another process gets the same bytes as a file', async (ctx) => {
    await need(ctx);
    const b = await build('lz4_block');
    const file = join(work, 'fifo-ref.tar');
    await unpack({ bootstrap: b.boot, blob: b.blob, output: file });
    const fifo = join(work, 'out.fifo');
    await runOk('mkfifo', [fifo]);
    const copy = join(work, 'fifo-copy.tar');
    const reader = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', fifo, copy], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => reader.on('close', resolve));
    await unpack({ bootstrap: b.boot, blob: b.blob, output: fifo });
    expect(await exited).toBe(0);
    expect((await readFile(copy)).equals(await readFile(file))).toBe(true);
    // The FIFO was written in place: still a FIFO, no temporary file beside it.
    expect((await lstat(fifo)).isFIFO()).toBe(true);
    expect((await readdir(work)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('verify (off by default, as upstream) catches a corrupted chunk', async (ctx) => {
    await need(ctx);
    const b = await build('none');
    const bad = join(work, 'corrupt.blob');
    await copyFile(b.blob!, bad);
    // Flip one byte inside the first chunk of files/one-byte's neighbour files/exact-4096.
    const image = openImage(b.boot);
    const files = image.root.children!.find((c) => c.name.toString() === 'files')!;
    const target = files.children!.find((c) => c.name.toString() === 'exact-4096')!;
    const c = target.chunks![0]!;
    const bytes = await readFile(bad);
    bytes[c.compressedOffset + 10] ^= 0xff;
    await writeFile(bad, bytes);
    const out = join(work, 'corrupt.tar');
    await unpack({ bootstrap: b.boot, blob: bad, output: out });
    await expect(unpack({ bootstrap: b.boot, blob: bad, output: join(work, 'corrupt-verified.tar'), verify: true })).rejects.toThrow(/digest mismatch/);
    expect((await readdir(work)).includes('corrupt-verified.tar')).toBe(false);
    const r = await run('tar', ['-xOf', out, 'files/exact-4096']);
    expect(r.stdout.length).toBe(4096);
    expect(blake3(r.stdout).equals(c.digest)).toBe(false);
  });
});
