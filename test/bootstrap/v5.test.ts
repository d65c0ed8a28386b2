// Our RAFS v5 writer against the bootstraps upstream built (fixtures/upstream/repeatable): the
// fixture's tree is unpacked by our reader, extracted by GNU tar as root, and built again with the
// fixture's flags (compressor none, --repeatable; sha256 or blake3). The data blob must come out
// byte-identical, and the bootstrap must hold the same bytes for every table and every inode
// record (inode, name, symlink, xattrs, chunk infos, inode digest). What upstream has changed
// since it wrote these files is asserted as such:
//   - s_inodes_count: the fixtures (2022) counted hard-link groups but not the root; upstream HEAD
//     (34e6071e) counts the root too, and so do we (one more);
//   - the extended blob table's features: builds since v2.2 set CAP_TAR_TOC (0x40000000);
//   - record order: the fixtures wrote records in inode-number order (the builder's node list);
//     upstream HEAD writes them in DFS pre-order (Tree::walk_dfs_pre, since 2023-06), as we do.
//     Readers find records through the inode table, so only the offsets in that table move.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM } from '../helpers/upstream.js';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import * as v5 from '../../src/format/rafs/v5.js';
import { unpack } from '../../src/read/unpack.js';
import { skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { writeTar } from '../helpers/oci.js';
import { hasTool, runOk } from '../helpers/tools.js';

const REPEATABLE = join(UPSTREAM, 'repeatable');
const BLOB = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';
const FIXTURES = [
  // The blake3 fixture's name says lz4_block, but its superblock says compression none (flags 0x5)
  // and it points at the same uncompressed blob: it is rebuilt with the flags it holds.
  { name: 'sha256-nocompress-repeatable', digester: 'sha256' },
  { name: 'blake3-lz4_block-non_repeatable', digester: 'blake3' },
] as const;

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-v5-fixtures-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface Parsed {
  sb: v5.RafsV5SuperBlock;
  buf: Buffer;
  /** Inode-table slot → the record's bytes (inode, names, xattrs, chunk infos). */
  records: Buffer[];
  /** Slots in the order their records sit in the file. */
  fileOrder: number[];
}

/** The bootstrap cut into its tables and records by the inode table. */
function parse(buf: Buffer): Parsed {
  const sb = v5.decodeSuperBlock(buf, 0);
  v5.validateSuperBlock(sb, buf.length);
  const table = v5.decodeInodeTable(buf, sb.s_inode_table_offset, sb.s_inode_table_entries);
  const records: Buffer[] = [];
  const at: Array<[number, number]> = [];
  for (let ino = 1; ino <= table.data.length; ino++) {
    const off = v5.inodeOffset(table, ino);
    const inode = v5.decodeInode(buf, off);
    let end = off + v5.inodeRecordSize(inode);
    if ((inode.i_flags & v5.InodeFlags.XATTR) !== 0) end += v5.xattrAreaSize(v5.decodeXattrs(buf, end));
    if ((inode.i_mode & 0o170000) === 0o100000) end += inode.i_child_count * v5.CHUNK_INFO_SIZE;
    records.push(buf.subarray(off, end));
    at.push([off, ino]);
  }
  return { sb, buf, records, fileOrder: at.sort((a, b) => a[0] - b[0]).map(([, ino]) => ino) };
}

/** Slots in DFS pre-order of the tree the records describe (children in child-index order). */
function dfsPreOrder(p: Parsed): number[] {
  const out: number[] = [];
  const stack = [1];
  while (stack.length > 0) {
    const ino = stack.pop()!;
    out.push(ino);
    const inode = v5.decodeInode(p.records[ino - 1]!, 0);
    if ((inode.i_mode & 0o170000) !== 0o040000) continue;
    for (let c = inode.i_child_index + inode.i_child_count - 1; c >= inode.i_child_index; c--) stack.push(c);
  }
  return out;
}

let source: Promise<string> | undefined;
/** The fixture's tree on disk: our unpack of the upstream bootstrap, extracted by GNU tar as root. */
async function fixtureTree(ctx: SkipContext): Promise<string> {
  if (process.getuid?.() !== 0) return skipLoudly(ctx, 'extracting the fixture tree with its owners needs root');
  if (!hasTool('tar')) return skipLoudly(ctx, 'GNU tar is not on PATH');
  source ??= (async () => {
    const tar = join(work, 'fixture.tar');
    await unpack({ bootstrap: join(REPEATABLE, FIXTURES[0].name), blobDir: join(REPEATABLE, 'blobs'), output: tar });
    const dir = join(work, 'tree');
    await mkdir(dir);
    await chmod(dir, 0o755);
    await runOk('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-owner', '--same-permissions', '-xf', tar, '-C', dir]);
    return dir;
  })();
  return source;
}

describe('our v5 writer against upstream\'s repeatable fixtures', () => {
  for (const f of FIXTURES) {
    it(`${f.name}: the same blob, tables and inode records; only upstream's later changes differ`, async (ctx) => {
      const tree = await fixtureTree(ctx);
      const out = join(work, `out-${f.digester}`);
      await mkdir(out);
      const r = await create({ source: tree, bootstrap: join(out, 'boot'), blobDir: out, fsVersion: 5, digester: f.digester, compressor: 'none', repeatable: true });
      expect(r.blobs).toEqual([BLOB]);
      expect((await readFile(join(out, BLOB))).equals(await readFile(join(REPEATABLE, 'blobs', BLOB)))).toBe(true);

      const theirs = parse(await readFile(join(REPEATABLE, f.name)));
      const ours = parse(await readFile(join(out, 'boot')));
      expect(ours.buf.length).toBe(theirs.buf.length);

      // Superblock: every field, s_inodes_count being the root more.
      expect({ ...ours.sb, s_inodes_count: 0 }).toEqual({ ...theirs.sb, s_inodes_count: 0 });
      expect(ours.sb.s_inodes_count).toBe(theirs.sb.s_inodes_count + 1);
      // The 8 KiB superblock region beyond its fields is zero in both.
      expect(ours.buf.subarray(80, v5.SUPERBLOCK_SIZE).equals(theirs.buf.subarray(80, v5.SUPERBLOCK_SIZE))).toBe(true);

      // Blob table byte for byte; the extended table but for the CAP_TAR_TOC feature bit.
      const { s_blob_table_offset: bt, s_blob_table_size: bts, s_extended_blob_table_offset: ext, s_extended_blob_table_entries: exn } = theirs.sb;
      expect(ours.buf.subarray(bt, bt + bts).equals(theirs.buf.subarray(bt, bt + bts))).toBe(true);
      const oursExt = v5.decodeExtBlobTable(ours.buf, ext, exn);
      const theirsExt = v5.decodeExtBlobTable(theirs.buf, ext, exn);
      expect(oursExt.map((e) => ({ ...e, features: 0 }))).toEqual(theirsExt);
      expect(theirsExt.map((e) => e.features)).toEqual([0]);
      expect(oursExt.map((e) => e.features)).toEqual([0x4000_0000]);

      // Every inode record, found through the inode table, byte for byte: numbers, parents,
      // child indexes, sizes, blocks, flags, nlink, mtimes, names, targets, digests, chunk infos.
      expect(ours.records.length).toBe(theirs.records.length);
      for (let i = 0; i < theirs.records.length; i++) {
        expect(ours.records[i]!.toString('hex'), `inode-table slot ${i + 1}`).toBe(theirs.records[i]!.toString('hex'));
      }
      // Record order: inode-number order in the fixture, DFS pre-order in ours (upstream HEAD).
      expect(theirs.fileOrder).toEqual(theirs.records.map((_, i) => i + 1));
      expect(ours.fileOrder).toEqual(dfsPreOrder(ours));
      expect(ours.fileOrder).not.toEqual(theirs.fileOrder);
      // Records follow the tables back to back in both files.
      const start = ext + exn * v5.EXT_BLOB_ENTRY_SIZE;
      for (const p of [ours, theirs]) {
        let off = start;
        for (const ino of p.fileOrder) off += p.records[ino - 1]!.length;
        expect(off).toBe(p.buf.length);
      }
    });
  }

  it('a second build of the same tree is byte-identical (the build is repeatable)', async (ctx) => {
    const tree = await fixtureTree(ctx);
    const boots: Buffer[] = [];
    for (const n of [1, 2]) {
      const out = join(work, `again-${n}`);
      await mkdir(out);
      await create({ source: tree, bootstrap: join(out, 'boot'), blobDir: out, fsVersion: 5, digester: 'sha256', compressor: 'lz4_block', repeatable: true, threads: n });
      boots.push(await readFile(join(out, 'boot')));
    }
    expect(boots[1]!.equals(boots[0]!)).toBe(true);
  });

  it('from a tar, as upstream\'s tar builder: i_rdev u32::MAX but for devices and FIFOs, every hardlink name flagged HARDLINK', async () => {
    const tar = join(work, 'links.tar');
    await writeTar(tar, [
      { name: 'd', type: 'dir' },
      { name: 'd/f', type: 'file', data: 'shared' },
      { name: 'd/g', type: 'hardlink', linkname: 'd/f' },
      { name: 'd/s', type: 'symlink', linkname: 'f' },
      { name: 'lone', type: 'file', data: 'lone' },
    ]);
    const inodes = async (type: string, source: string) => {
      const out = join(work, `flags-${type}`);
      await mkdir(out);
      await create({ source, type, bootstrap: join(out, 'boot'), blobDir: out, fsVersion: 5 });
      const p = parse(await readFile(join(out, 'boot')));
      const byName = new Map<string, v5.RafsV5Inode>();
      for (const r of p.records) {
        const inode = v5.decodeInode(r, 0);
        byName.set(v5.decodeInodeNames(r, v5.INODE_SIZE, inode).name.toString(), inode);
      }
      return byName;
    };
    const t = await inodes('tar-rafs', tar);
    for (const name of ['/', 'd', 'f', 'g', 's', 'lone']) expect(t.get(name)!.i_rdev, name).toBe(0xffff_ffff);
    expect(['f', 'g', 'lone'].map((n) => t.get(n)!.i_flags & v5.InodeFlags.HARDLINK)).toEqual([v5.InodeFlags.HARDLINK, v5.InodeFlags.HARDLINK, 0]);
    expect(t.get('s')!.i_flags).toBe(v5.InodeFlags.SYMLINK);
    expect(t.get('g')!.i_ino).toBe(t.get('f')!.i_ino);
    expect(t.get('g')!.i_nlink).toBe(2);
    // The same files from a directory: rdev 0 and no HARDLINK flag (upstream's directory builder).
    const dir = join(work, 'links-dir');
    await mkdir(dir);
    await runOk('tar', ['-xf', tar, '-C', dir]);
    const d = await inodes('dir-rafs', dir);
    for (const name of ['d', 'f', 'g', 's', 'lone']) expect(d.get(name)!.i_rdev, name).toBe(0);
    expect(['f', 'g'].map((n) => d.get(n)!.i_flags)).toEqual([0, 0]);
    expect(d.get('g')!.i_nlink).toBe(2);
  });
});
