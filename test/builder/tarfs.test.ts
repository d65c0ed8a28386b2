// `create -t tar-tarfs` in process (tar-merge-export.md §6, rafs-v6.md §1, §3.3): the tar is the
// blob, copied into -D as it is read; the bootstrap has 512-byte blocks and points every file's
// chunks at its data inside the tar. Upstream's all-entry-type.tar is decoded field by field;
// tars made in code check chunking, the one-entry chunk table, FIFO input, replaced hardlink
// targets, refusals and bad input (one error, nothing left behind).
import { describe, expect, it } from 'vitest';
import { scratch } from '../helpers/scratch.js';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create, type CreateOptions } from '../../src/builder/create.js';
import { TARFS_BLOCK_SIZE } from '../../src/builder/tarfs.js';
import { NydusError } from '../../src/errors.js';
import { openImage } from '../../src/read/open.js';
import { BlobReader } from '../../src/read/data.js';
import type { ImageNode } from '../../src/read/model.js';
import * as sbc from '../../src/format/erofs/superblock.js';
import * as ino from '../../src/format/erofs/inode.js';
import * as cidx from '../../src/format/erofs/chunk-index.js';
import * as device from '../../src/format/erofs/device.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import * as ci from '../../src/format/rafs/chunk-info.js';
import { imageEntries } from './read-back.js';
import { run } from '../helpers/tools.js';
import { writeTar } from '../helpers/oci.js';
import { prng } from '../helpers/tree.js';
import { UPSTREAM } from '../cli/cli-runner.js';

const FIXTURE = join(UPSTREAM, 'tar', 'all-entry-type.tar');
const EMPTY_TAR = join(UPSTREAM, 'tar', 'empty.tar');
const FIXTURE_ID = '87aae74a677161ede3210f3a70a9d5fea997193e6c6a03ef22f4e3eeaeb30884';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const work = scratch('nydus-tarfs-');
/** A fresh blob dir for one build. */
const freshDir = work.fresh;

function build(source: string, dir: string, more: Partial<CreateOptions> = {}) {
  return create({ type: 'tar-tarfs', source, blobDir: dir, bootstrap: join(dir, 'boot'), ...more });
}

/** The regular members of a GNU/ustar tar with short names, and where their data starts. */
function dataOffsets(tar: Buffer): Map<string, number> {
  const out = new Map<string, number>();
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) {
      off += 512;
      continue;
    }
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    if (type === '0' || type === '\0') out.set(name, off + 512);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The chunk indexes an inode holds, decoded from the bootstrap bytes. */
function chunkIndexes(boot: Buffer, nid: number): { iu: number; entries: cidx.ChunkIndex[] } {
  const sb = sbc.decode(boot);
  const es = ext.decode(boot);
  const off = sb.meta_blkaddr * (1 << sb.blkszbits) + nid * ino.SLOT_SIZE;
  const i = ino.decode(boot, off);
  expect(i.layout).toBe(ino.LAYOUT_CHUNK_BASED);
  const base = Math.ceil((off + ino.inodeSize(i) + (i.i_xattr_icount === 0 ? 0 : 12 + 4 * (i.i_xattr_icount - 1))) / 8) * 8;
  const n = Math.ceil(i.i_size / es.chunk_size);
  return { iu: i.i_u, entries: Array.from({ length: n }, (_, k) => cidx.decode(boot, base + k * cidx.SIZE)) };
}

function byPath(root: ImageNode): Map<string, ImageNode> {
  const m = new Map<string, ImageNode>();
  for (const [rel, n] of imageEntries(root)) m.set(`/${rel.toString('latin1')}`, n);
  return m;
}

async function expectNothingLeft(dir: string, keep: string[] = []): Promise<void> {
  expect((await readdir(dir)).filter((n) => !keep.includes(n)).sort()).toEqual([]);
}

describe('upstream all-entry-type.tar', () => {
  it('every header field of the 512-byte-block bootstrap, and the tar copied into -D under its sha256', async () => {
    const dir = await freshDir('fixture');
    const r = await build(FIXTURE, dir, { prefetch: ['tar/dir1/hardlink2.txt'] });
    const tar = await readFile(FIXTURE);
    expect(r).toMatchObject({ bootstrap: join(dir, 'boot'), blobs: [FIXTURE_ID], blobPath: join(dir, FIXTURE_ID), blobSize: 10240, compressor: 'none', fsVersion: '6' });
    expect((await readFile(join(dir, FIXTURE_ID))).equals(tar)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([FIXTURE_ID, 'boot'].sort());

    const boot = await readFile(join(dir, 'boot'));
    expect(boot.length).toBe(20480);
    const sb = sbc.decode(boot);
    // 512-byte blocks; the meta block sits at 8192 (after the 4 KiB-aligned blob table), the root one 4 KiB later.
    expect(sb).toMatchObject({ blkszbits: 9, root_nid: 128, inos: 10, blocks: 20, meta_blkaddr: 8192 / 512, extra_devices: 1, devt_slotoff: 11, feature_incompat: 0xc });
    const es = ext.decode(boot);
    expect(es.flags).toBe(ext.FLAG_COMPRESSION_NONE | ext.FLAG_HASH_SHA256 | ext.FLAG_EXPLICIT_UID_GID | ext.FLAG_TARFS_MODE | ext.FLAG_ENCRYPTION_NONE);
    expect(es).toMatchObject({ blob_table_offset: 4096, blob_table_size: 256, chunk_size: 0x100000, chunk_table_offset: 16384, chunk_table_size: 80, prefetch_table_offset: 4096 + 256, prefetch_table_size: 4 });
    expect(boot.readUInt32LE(4096 + 256)).toBe(141);

    expect(bt.decode(boot, 4096)).toMatchObject({
      blob_id: FIXTURE_ID, blob_index: 0, chunk_size: 0x100000, chunk_count: 1, compression_algo: 0, digest_algo: 1,
      features: bt.FEATURE_TARFS | bt.FEATURE_CAP_TAR_TOC, compressed_size: 10240, uncompressed_size: 10240,
      blob_toc_size: 0, ci_compressor: 1, ci_offset: 0, ci_compressed_size: 0, ci_uncompressed_size: 0, blob_meta_size: 0, cipher_algo: 0,
    });
    // 20 blocks of 512 bytes, mapped past the bootstrap at the next 512 KiB boundary.
    expect(device.decode(boot, 1408)).toMatchObject({ blob_id: FIXTURE_ID, blocks: 20, mapped_blkaddr: 0x80000 / 512 });
    // The one chunk-table entry: no digest, not compressed, in place in the tar.
    expect(ci.decode(boot, 16384)).toMatchObject({
      digest: Buffer.alloc(32), blob_index: 0, flags: 0, compressed_size: 15, uncompressed_size: 15,
      compressed_offset: 2048, uncompressed_offset: 2048, file_offset: 0, index: 0, crc32: 0,
    });

    const image = openImage(join(dir, 'boot'));
    const nodes = byPath(image.root);
    // Upstream's placement with 512-byte blocks: inline dirs and the one file inode packed in order.
    expect(Object.fromEntries([...nodes].map(([p, n]) => [p, n.ino]))).toEqual({
      '/': 128, '/tar': 132, '/tar/dir1': 136, '/tar/dir1/hardlink2.txt': 141, '/tar/dir1/dir3': 144,
      '/tar/dir1/dir3/hardlink1.txt': 141, '/tar/dir1/dir3/xfile.txt': 141, '/tar/dir2': 149,
      '/tar/dir2/hardlink3.txt': 141, '/tar/dir2/symlink1.txt': 154,
    });
    // Spec §1.7: the file's data is at tar offset 2048, so its chunk is block 4 of device 1.
    const { iu, entries } = chunkIndexes(boot, 141);
    expect(iu).toBe(cidx.FORMAT_INDEXES | (20 - 9));
    expect(entries).toEqual([{ ci_index: 0, device_id: 1, blkaddr: 4 }]);
    // No "./" in the tar: the synthetic root (040755 0:0 mtime 0).
    expect(nodes.get('/')).toMatchObject({ mode: 0o40755, uid: 0, gid: 0, mtime: 0 });

    const reader = new BlobReader(image, { blobDir: dir });
    try {
      for (const p of ['/tar/dir1/hardlink2.txt', '/tar/dir2/hardlink3.txt']) expect(Buffer.concat([...reader.readFile(nodes.get(p)!)]).toString()).toBe('This is a test\n');
    } finally {
      reader.close();
    }
  });

  it('--blob-id names the blob verbatim; without -B the bootstrap is -D/<sha256 of it>; both builds equal but the ids', async () => {
    const dir = await freshDir('blob-id');
    const id = 'f'.repeat(64);
    const r = await create({ type: 'tar-tarfs', source: FIXTURE, blobDir: dir, blobId: id });
    const boot = await readFile(r.bootstrap);
    expect(r.bootstrap).toBe(join(dir, sha256(boot)));
    expect(r.blobs).toEqual([id]);
    expect((await readFile(join(dir, id))).equals(await readFile(FIXTURE))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([id, sha256(boot)].sort());
    expect(bt.decode(boot, 4096).blob_id).toBe(id);
    expect(device.decode(boot, 1408).blob_id).toBe(id);

    const other = await freshDir('blob-id-ref');
    await build(FIXTURE, other);
    const ref = await readFile(join(other, 'boot'));
    const mask = (b: Buffer) => {
      const m = Buffer.from(b);
      m.fill(0, 1408, 1408 + 64);
      m.fill(0, 4096, 4096 + 64);
      return m;
    };
    expect(mask(boot).equals(mask(ref))).toBe(true);
  });

  it('from a FIFO: the same bootstrap and the same copy as from the file', async () => {
    const ref = await freshDir('fifo-ref');
    await build(FIXTURE, ref);
    const dir = await freshDir('fifo');
    const fifo = join(await work.fresh('input'), 'fifo');
    await run('mkfifo', [fifo]);
    const writer = run('sh', ['-c', 'cat "$1" > "$2"', 'sh', FIXTURE, fifo]);
    const r = await build(fifo, dir);
    expect((await writer).code).toBe(0);
    expect(r.blobs).toEqual([FIXTURE_ID]);
    expect((await readFile(join(dir, 'boot'))).equals(await readFile(join(ref, 'boot')))).toBe(true);
    expect((await readFile(join(dir, FIXTURE_ID))).equals(await readFile(FIXTURE))).toBe(true);
  });

  it('empty.tar (0 bytes): a root-only bootstrap with no blob entry and no device slot', async () => {
    const dir = await freshDir('empty');
    const r = await build(EMPTY_TAR, dir);
    expect(r.blobs).toEqual([]);
    expect(r.blobSize).toBe(0);
    const boot = await readFile(join(dir, 'boot'));
    expect(sbc.decode(boot)).toMatchObject({ blkszbits: 9, root_nid: 128, inos: 1, blocks: 0, meta_blkaddr: 0, extra_devices: 0 });
    // With no blob, "every blob inlines chunk digests" holds, as upstream computes it.
    expect(ext.decode(boot).flags).toBe(ext.FLAG_COMPRESSION_NONE | ext.FLAG_HASH_SHA256 | ext.FLAG_EXPLICIT_UID_GID | ext.FLAG_TARFS_MODE | ext.FLAG_ENCRYPTION_NONE | ext.FLAG_INLINED_CHUNK_DIGEST);
    expect(openImage(join(dir, 'boot')).root.children).toEqual([]);
    // The input is still copied under its digest (the digest of nothing).
    expect((await readFile(join(dir, sha256(Buffer.alloc(0))))).length).toBe(0);
  });
});

describe('tars made in code', () => {
  it('4 KiB chunks in place in the tar; a contiguous file claims one big chunk; the chunk table keeps the blob\'s last chunk in dump order', async () => {
    const dir = await freshDir('chunks');
    const a = prng(31, 10_000);
    const b = prng(32, 5_000);
    const c = prng(33, 100);
    const tarFile = work.path('chunks.tar');
    const tar = await writeTar(tarFile, [
      { name: 'a', type: 'file', data: a },
      { name: 'b', type: 'file', data: b },
      { name: 'd', type: 'dir' },
      { name: 'd/c', type: 'file', data: c },
      { name: 'd/e', type: 'hardlink', linkname: 'a' },
    ]);
    const at = dataOffsets(tar);
    const r = await build(tarFile, dir, { chunkSize: 0x1000 });
    expect(r.blobs).toEqual([sha256(tar)]);
    const boot = await readFile(join(dir, 'boot'));
    const image = openImage(join(dir, 'boot'));
    const nodes = byPath(image.root);

    // a: 3 chunks back to back from its data offset; 10000 B > 4 KiB, contiguous → one 16 KiB chunk claimed.
    const ia = chunkIndexes(boot, nodes.get('/a')!.ino);
    expect(ia.iu).toBe(cidx.FORMAT_INDEXES | (14 - 9));
    expect(ia.entries).toEqual([0, 1, 2].map((k) => ({ ci_index: k, device_id: 1, blkaddr: (at.get('a')! + k * 4096) / 512 })));
    const ib = chunkIndexes(boot, nodes.get('/b')!.ino);
    expect(ib.iu).toBe(cidx.FORMAT_INDEXES | (13 - 9));
    expect(ib.entries).toEqual([3, 4].map((k, i) => ({ ci_index: k, device_id: 1, blkaddr: (at.get('b')! + i * 4096) / 512 })));
    const ic = chunkIndexes(boot, nodes.get('/d/c')!.ino);
    expect(ic.iu).toBe(cidx.FORMAT_INDEXES | (12 - 9));
    expect(ic.entries).toEqual([{ ci_index: 5, device_id: 1, blkaddr: at.get('d/c')! / 512 }]);
    expect(nodes.get('/d/e')!.ino).toBe(nodes.get('/a')!.ino);

    expect(bt.decode(boot, 4096)).toMatchObject({ chunk_size: 0x1000, chunk_count: 6, compressed_size: tar.length, uncompressed_size: tar.length });
    // Upstream keys its chunk table by (digest, blob) and tarfs chunks have no digest: one entry,
    // from the last name dumped (d/e, a link to a), so a's last chunk.
    const es = ext.decode(boot);
    expect(es.chunk_table_size).toBe(80);
    expect(ci.decode(boot, es.chunk_table_offset)).toMatchObject({
      index: 2, file_offset: 8192, compressed_offset: at.get('a')! + 8192, uncompressed_offset: at.get('a')! + 8192, compressed_size: 10_000 - 8192, uncompressed_size: 10_000 - 8192,
    });

    const reader = new BlobReader(image, { blobDir: dir });
    try {
      for (const [p, data] of [['/a', a], ['/b', b], ['/d/c', c], ['/d/e', a]] as const) {
        expect(Buffer.concat([...reader.readFile(nodes.get(p)!)]).equals(data), p).toBe(true);
      }
    } finally {
      reader.close();
    }
  });

  it('a hardlink keeps its target\'s data when a later entry replaces the target (upstream copies the chunks)', async () => {
    const dir = await freshDir('replaced');
    const tarFile = work.path('replaced.tar');
    await writeTar(tarFile, [
      { name: 'a', type: 'file', data: 'first\n' },
      { name: 'b', type: 'hardlink', linkname: 'a' },
      { name: 'a', type: 'file', data: 'second!\n' },
    ]);
    await build(tarFile, dir);
    const image = openImage(join(dir, 'boot'));
    const nodes = byPath(image.root);
    expect(nodes.get('/a')!.ino).not.toBe(nodes.get('/b')!.ino);
    expect([nodes.get('/a')!.nlink, nodes.get('/b')!.nlink]).toEqual([1, 1]);
    const reader = new BlobReader(image, { blobDir: dir });
    try {
      expect(Buffer.concat([...reader.readFile(nodes.get('/a')!)]).toString()).toBe('second!\n');
      expect(Buffer.concat([...reader.readFile(nodes.get('/b')!)]).toString()).toBe('first\n');
    } finally {
      reader.close();
    }
    // Both files' chunks count: the replaced data stays in the blob.
    expect(image.blobs[0]!.chunkCount).toBe(2);
  });

  it('--repeatable stores 0:0 and leaves EXPLICIT_UID_GID unset', async () => {
    const dir = await freshDir('repeatable');
    const tarFile = work.path('owned.tar');
    await writeTar(tarFile, [{ name: 'f', type: 'file', data: 'x', uid: 1000, gid: 2000 }]);
    await build(tarFile, dir, { repeatable: true });
    const image = openImage(join(dir, 'boot'));
    expect(image.flags & ext.FLAG_EXPLICIT_UID_GID).toBe(0);
    expect(byPath(image.root).get('/f')).toMatchObject({ uid: 0, gid: 0 });
    const kept = await freshDir('owned');
    await build(tarFile, kept);
    expect(byPath(openImage(join(kept, 'boot')).root).get('/f')).toMatchObject({ uid: 1000, gid: 2000 });
  });

  it('the block size constant is the tar record size', () => {
    expect(TARFS_BLOCK_SIZE).toBe(512);
  });
});

describe('refused options and bad input: one error, nothing left under a final name', () => {
  const refused: Array<[string, Partial<CreateOptions>, RegExp]> = [
    ['--blob', { blob: 'BLOB' }, /conflicts with --blob$/],
    ['--chunk-dict', { chunkDict: 'bootstrap=/nonexistent' }, /conflicts with --chunk-dict/],
    ['--parent-bootstrap', { parentBootstrap: '/nonexistent' }, /conflicts with --parent-bootstrap/],
    ['--blob-inline-meta', { blobInlineMeta: true, bootstrap: undefined }, /conflicts with --blob-inline-meta/],
    ['--features blob-toc', { blobToc: true }, /conflicts with --features blob-toc/],
    ['--aligned-chunk', { alignedChunk: true }, /conflicts with --aligned-chunk/],
  ];
  for (const [flag, opts, re] of refused) {
    it(`refuses ${flag}`, async () => {
      const dir = await freshDir('refused');
      const o = { ...opts, ...(opts.blob ? { blob: join(dir, 'blob') } : {}) };
      const e = await build(FIXTURE, dir, o).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(NydusError);
      expect((e as NydusError).code).toBe('USAGE');
      expect((e as Error).message).toMatch(re);
      await expectNothingLeft(dir);
    });
  }

  it('refuses --blob-cache-dir and a missing -D', async () => {
    const dir = await freshDir('cache');
    const e1 = await create({ type: 'tar-tarfs', source: FIXTURE, bootstrap: join(dir, 'boot'), blobCacheDir: dir }).catch((x: unknown) => x);
    expect((e1 as Error).message).toMatch(/conflicts with --blob-cache-dir/);
    const e2 = await create({ type: 'tar-tarfs', source: FIXTURE, bootstrap: join(dir, 'boot') }).catch((x: unknown) => x);
    expect(e2).toBeInstanceOf(NydusError);
    expect((e2 as Error).message).toMatch(/--blob-dir/);
    await expectNothingLeft(dir);
  });

  it('a truncated tar, gzip input, a directory and a missing file fail as SOURCE errors', async () => {
    const tar = await readFile(FIXTURE);
    const truncated = work.path('truncated.tar');
    await writeFile(truncated, tar.subarray(0, 2055));
    const half = work.path('half-header.tar');
    await writeFile(half, tar.subarray(0, 700));
    const gz = work.path('all-entry-type.tar.gz');
    await writeFile(gz, gzipSync(tar));
    const cases: Array<[string, RegExp]> = [
      [truncated, /hardlink1.txt: truncated tar: the input ends 7 bytes into the entry's 15 bytes of data/],
      [half, /truncated tar: the input ends inside the header/],
      [gz, /at tar offset 0 .*\(the input is gzip data: tar-tarfs reads a plain tar, decompress it first\)$/],
      [work.dir, /reads a regular file, a FIFO or a character device/],
      [work.path('does-not-exist.tar'), /no such file or directory/],
    ];
    for (const [source, re] of cases) {
      const dir = await freshDir('bad');
      const e = await build(source, dir).catch((x: unknown) => x);
      expect(e, source).toBeInstanceOf(NydusError);
      expect((e as NydusError).code).toBe('SOURCE');
      expect((e as Error).message).toMatch(re);
      expect((e as Error).message).not.toContain('\n');
      await expectNothingLeft(dir);
    }
  });

  it('a junk block after the end of the archive is a header error (reading goes on to EOF)', async () => {
    const tar = await readFile(FIXTURE);
    const junk = work.path('junk.tar');
    await writeFile(junk, Buffer.concat([tar, Buffer.alloc(512, 0x41)]));
    const dir = await freshDir('junk');
    await expect(build(junk, dir)).rejects.toThrow(/bad tar header at tar offset 10240/);
    await expectNothingLeft(dir);
  });
});
