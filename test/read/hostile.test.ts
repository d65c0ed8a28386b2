// Hostile bootstraps built in code (the real writer, then patched bytes): every name, blob id,
// depth and size a reader takes from an image is validated where it is read, and work and
// memory stay bounded by the bytes present. Each case failed before the readers checked it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM } from '../helpers/upstream.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, ftruncateSync, closeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NydusError } from '../../src/errors.js';
import { planDisk } from '../../src/builder/export.js';
import { LIMITS } from '../../src/format/limits.js';
import * as v5 from '../../src/format/rafs/v5.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import * as sbc from '../../src/format/erofs/superblock.js';
import { loadBootstrap, openImage } from '../../src/read/open.js';
import { loadV5 } from '../../src/read/v5.js';
import { loadV6 } from '../../src/read/v6.js';
import { check, verboseLines } from '../../src/read/check.js';
import { inspectReport, inspectRequest } from '../../src/read/inspect.js';
import { unpack, unpackImage } from '../../src/read/unpack.js';
import { treeFromImage } from '../../src/tree/from-image.js';
import type { ChunkInfo, ImageNode, RafsImage } from '../../src/read/model.js';
import { CHUNK_SIZE, blobEntry, buildV6, dir, file, link, oneChunk, patchBytes, symlink } from './craft.js';
import type { TreeNode } from '../../src/tree/node.js';

const V5_BOOT = join(UPSTREAM, 'repeatable/sha256-nocompress-repeatable');

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nydus-hostile-read-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The NydusError `fn` throws (a raw JS error fails the test). */
function refusal(fn: () => unknown): NydusError {
  try {
    fn();
  } catch (e) {
    if (e instanceof NydusError) {
      expect(e.message).not.toContain('\n');
      return e;
    }
    throw e;
  }
  throw new Error('expected a refusal, got success');
}

// ---- class 1: names ---------------------------------------------------------------------------

describe('v6 names are validated when read', () => {
  const tree = () => dir('', [dir('d', [file('aaa'), file('zzz')]), file('AAAAAAA')]);

  it('a name with "/" (a member ../../x) is refused', () => {
    const boot = patchBytes(buildV6(tree()), 'AAAAAAA', '../../x');
    expect(refusal(() => loadV6(boot)).message).toMatch(/entry "\.\.\/\.\.\/x": name contains "\/"/);
  });

  it('a name with a NUL byte inside is refused', () => {
    const boot = patchBytes(buildV6(tree()), 'aaa', 'a\0a');
    expect(refusal(() => loadV6(boot)).message).toMatch(/directory "\/d": entry .*NUL/);
  });

  it('a name longer than NAME_MAX is refused', () => {
    const long = 'n'.repeat(LIMITS.NAME_MAX.value + 1);
    const boot = buildV6(dir('', [file(long)]));
    expect(refusal(() => loadV6(boot)).message).toMatch(/name of 256 bytes/);
  });

  it('"." and ".." must point to the directory and its parent', () => {
    // d's ".." is the root's nid; point it at the file next to it.
    const boot = buildV6(tree());
    const img = loadV6(boot);
    const d = img.root.children!.find((c) => c.name.toString() === 'd')!;
    const other = img.root.children!.find((c) => c.name.toString() === 'AAAAAAA')!;
    // d's dirents: "." (d's nid, name offset 48: four 12-byte dirents), then ".." (the root's nid).
    const rootNid = img.root.ino;
    let patched = 0;
    for (let off = 0; off + 24 <= boot.length; off += 2) {
      if (boot.readBigUInt64LE(off) === BigInt(d.ino) && boot.readUInt16LE(off + 8) === 48 && boot.readBigUInt64LE(off + 12) === BigInt(rootNid)) {
        boot.writeBigUInt64LE(BigInt(other.ino), off + 12);
        patched++;
      }
    }
    expect(patched).toBe(1);
    expect(refusal(() => loadV6(boot)).message).toMatch(/directory "\/d": entry "\.\." points to nid \d+, not to its parent/);
  });

  it('two names of the same inode share one decoded chunk list', () => {
    const f = file('big', CHUNK_SIZE * 4, [0, 1, 2, 3].map((k) => ({ chunk: 0, fileOffset: k * CHUNK_SIZE })));
    const boot = buildV6(dir('', [f, link('h1', f), link('h2', f)]), { chunks: [oneChunk()], blobs: [blobEntry('b', CHUNK_SIZE)] });
    const kids = loadV6(boot).root.children!;
    expect(kids.map((k) => k.name.toString())).toEqual(['big', 'h1', 'h2']);
    expect(kids[1].chunks).toBe(kids[0].chunks);
    expect(kids[2].chunks).toBe(kids[0].chunks);
  });
});

/** Child index → [offset, inode] of every v5 record. */
function v5Records(buf: Buffer): Array<{ off: number; inode: v5.RafsV5Inode; name: Buffer }> {
  const sb = v5.decodeSuperBlock(buf, 0);
  const table = v5.decodeInodeTable(buf, sb.s_inode_table_offset, sb.s_inode_table_entries);
  const out = [];
  for (let i = 1; i <= table.data.length; i++) {
    const off = v5.inodeOffset(table, i);
    const inode = v5.decodeInode(buf, off);
    out.push({ off, inode, name: v5.decodeInodeNames(buf, off + v5.INODE_SIZE, inode).name });
  }
  return out;
}

/** The fixture with one record renamed (same padded size: the name's slot is 8-byte aligned). */
function renameV5(buf: Buffer, from: string, to: string, parentName?: string): Buffer {
  const out = Buffer.from(buf);
  const recs = v5Records(buf);
  const parentIno = parentName === undefined ? undefined : recs.find((r) => r.name.toString() === parentName)!.inode.i_ino;
  const r = recs.filter((x) => x.name.toString() === from && (parentIno === undefined || x.inode.i_parent === parentIno));
  expect(r).toHaveLength(1);
  expect(v5.align8(to.length)).toBe(v5.align8(from.length));
  out.writeUInt16LE(to.length, r[0].off + 100);
  out.fill(0, r[0].off + v5.INODE_SIZE, r[0].off + v5.INODE_SIZE + v5.align8(from.length));
  out.write(to, r[0].off + v5.INODE_SIZE, 'latin1');
  return out;
}

describe('v5 names are validated when read', () => {
  const boot = readFileSync(V5_BOOT);

  it('the fixture loads', () => {
    expect(loadV5(boot).root.children!.length).toBe(3);
  });

  it('a name "../x" is refused', () => {
    const bad = renameV5(boot, 'foo1', '../x');
    expect(refusal(() => loadV5(bad)).message).toMatch(/directory "\/symlink-test": entry "\.\.\/x": name contains "\/"/);
  });

  it('a name ".." is refused', () => {
    const bad = renameV5(boot, 'foo', '..', 'symlink-test');
    expect(refusal(() => loadV5(bad)).message).toMatch(/entry "\.\.": name "\.\." is not an entry/);
  });

  it('two entries of one name (a file and a directory "busybox") are refused', () => {
    const bad = renameV5(boot, 'test.sh', 'busybox', 'normal-file-test');
    expect(refusal(() => loadV5(bad)).message).toMatch(/directory "\/normal-file-test": entry "busybox" appears twice/);
  });
});

describe('unpack re-checks what it writes (defence in depth behind the loaders)', () => {
  const fake = (root: ImageNode): RafsImage => ({
    version: 6, flags: 0, compressor: 'none', digester: 'blake3', chunkSize: CHUNK_SIZE, blockSize: 4096, inodeCount: 3,
    blobs: [], chunkTable: [], prefetch: [], root, bootstrapSize: 0,
  });
  const node = (name: string, mode: number, extra: Partial<ImageNode> = {}): ImageNode => ({
    ino: Math.floor(Math.random() * 1e9), name: Buffer.from(name), mode, uid: 0, gid: 0, size: 0, mtime: 0, mtimeNsec: 0, nlink: 1, rdev: 0, xattrs: [], ...extra,
  });

  it.each([
    ['a ".." member', [node('..', 0o100644, { chunks: [] })]],
    ['an absolute member', [node('/abs', 0o100644, { chunks: [] })]],
    ['a symlink and a directory of one name', [node('link', 0o120777, { target: Buffer.from('/') }), node('link', 0o40755, { children: [node('file', 0o100644, { chunks: [] })] })]],
  ])('%s is refused and no output is left', async (_what, children) => {
    const out = join(work, 'refused.tar');
    const root = node('', 0o40755, { children });
    await expect(unpackImage(fake(root), { bootstrap: 'crafted', output: out })).rejects.toThrow(/refusing to write tar member/);
    expect(existsSync(out)).toBe(false);
  });
});

// ---- class 2: blob ids ------------------------------------------------------------------------

describe('blob ids are refused when read', () => {
  it('v6: a blob table or device slot id "../../etc/passwd"', () => {
    const f = file('f', CHUNK_SIZE, [{ chunk: 0, fileOffset: 0 }]);
    const boot = buildV6(dir('', [f]), { chunks: [oneChunk()], blobs: [blobEntry('a'.repeat(16), CHUNK_SIZE)] });
    expect(loadV6(boot).blobs[0].blobId).toBe('a'.repeat(16));
    const both = Buffer.from(boot).toString('latin1').split('a'.repeat(16)).join('../../etc/passwd');
    expect(refusal(() => loadV6(Buffer.from(both, 'latin1'))).message).toMatch(/blob_table\[0\]\.blob_id: blob id "\.\.\/\.\.\/etc\/passwd" must be/);
    const es = ext.decode(boot);
    const slotOnly = Buffer.from(boot);
    slotOnly.write('../../etc/passwd', sbc.DEVT_SLOTOFF * 128, 'latin1');
    expect(es.blob_table_offset).not.toBe(sbc.DEVT_SLOTOFF * 128);
    expect(refusal(() => loadV6(slotOnly)).message).toMatch(/device_slot\[0\]\.blob_id: blob id "\.\.\/\.\.\/etc\/passwd"/);
  });

  it('v5: a blob table id with "/"', () => {
    const boot = readFileSync(V5_BOOT);
    const id = loadV5(boot).blobs[0].blobId;
    const bad = patchBytes(boot, id, `../${'x'.repeat(id.length - 3)}`);
    expect(refusal(() => loadV5(bad)).message).toMatch(/blob_table\[0\]\.blob_id: blob id "\.\.\/x+" must be/);
  });
});

// ---- class 3: amplification -------------------------------------------------------------------

describe('work and memory are bounded by the bytes present', () => {
  it('an inode claiming more chunk indexes than the bootstrap holds is refused before allocating', () => {
    const f = file('f', CHUNK_SIZE, [{ chunk: 0, fileOffset: 0 }]);
    const boot = buildV6(dir('', [f]), { chunks: [oneChunk()], blobs: [blobEntry('b', CHUNK_SIZE)] });
    const img = loadV6(boot);
    const nid = img.root.children![0].ino;
    const off = sbc.decode(boot).meta_blkaddr * 4096 + nid * 32;
    boot.writeUInt32LE(0, off + 8);
    boot.writeUInt32LE(0x100, off + 12); // i_size = 2^40
    expect(refusal(() => loadV6(boot)).message).toMatch(/inode@nid\d+\.i_size = 1099511627776: needs 268435456 chunk indexes/);
  });

  it('a bootstrap larger than BOOTSTRAP_MAX is refused before it is read', () => {
    const f = join(work, 'huge.boot');
    writeFileSync(f, buildV6(dir('', [])));
    const fd = openSync(f, 'r+');
    ftruncateSync(fd, LIMITS.BOOTSTRAP_MAX.value + 4096);
    closeSync(fd);
    const t = Date.now();
    expect(refusal(() => openImage(f)).message).toMatch(/bootstrap size: 1073745920 exceeds BOOTSTRAP_MAX/);
    expect(Date.now() - t).toBeLessThan(5000);
    rmSync(f);
  });

  it('one file of 20,000 chunks named 3,000 times loads in bounded memory', () => {
    const n = 20_000;
    const f = file('big', CHUNK_SIZE * n, Array.from({ length: n }, (_, k) => ({ chunk: 0, fileOffset: k * CHUNK_SIZE })));
    const names = Array.from({ length: 3000 }, (_, i) => link(`l${String(i).padStart(5, '0')}`, f));
    const boot = buildV6(dir('', [f, ...names]), { chunks: [oneChunk()], blobs: [blobEntry('b', CHUNK_SIZE)] });
    expect(boot.length).toBeLessThan(400 * 1024);
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    const img = loadBootstrap(boot);
    const grown = process.memoryUsage().heapUsed - before;
    expect(img.root.children).toHaveLength(3001);
    // Before: 60 million chunk objects (about 6 GB); now one list of 20,000.
    expect(grown).toBeLessThan(64 << 20);
    const chunks: ChunkInfo[] = [];
    const t = treeFromImage(img, chunks);
    expect(chunks).toHaveLength(1);
    expect(t.root.children!.filter((c: TreeNode) => c.linkTo)).toHaveLength(3000);
    // check -v listed the chunks under every name: 60 million lines held in memory (fuzz seed 202).
    let lines = 0;
    for (const _ of verboseLines(img)) lines++;
    expect(lines).toBe(1 + 3001 + n);
  });
});

describe('unpack output is bounded by the image', () => {
  it('one inode named 2,000 times with nlink 1 is written once, then as hardlinks', async () => {
    const f = file('big', CHUNK_SIZE * 4, Array.from({ length: 4 }, (_, k) => ({ chunk: 0, fileOffset: k * CHUNK_SIZE })));
    const names = Array.from({ length: 2000 }, (_, i) => link(`l${String(i).padStart(5, '0')}`, f));
    const boot = buildV6(dir('', [f, ...names]), { chunks: [oneChunk()], blobs: [blobEntry('b', CHUNK_SIZE)] });
    const nid = loadBootstrap(boot).root.children![0]!.ino;
    const at = sbc.decode(boot).meta_blkaddr * 4096 + nid * 32;
    // A hostile writer says nlink 1 for an inode it names 2,001 times.
    if ((boot.readUInt16LE(at) & 1) === 1) boot.writeUInt32LE(1, at + 44);
    else boot.writeUInt16LE(1, at + 6);
    expect(loadBootstrap(boot).root.children![0]!.nlink).toBe(1);
    const dirOut = mkdtempSync(join(work, 'nlink-'));
    writeFileSync(join(dirOut, 'boot'), boot);
    writeFileSync(join(dirOut, 'b'), Buffer.alloc(CHUNK_SIZE, 7));
    await unpack({ bootstrap: join(dirOut, 'boot'), output: join(dirOut, 'out.tar'), blobDir: dirOut });
    const size = readFileSync(join(dirOut, 'out.tar')).length;
    // Before: the 4-chunk file's data under every name, 2,001 times.
    expect(size).toBeLessThan(4 * CHUNK_SIZE + 2100 * 1536);
  });
});

// ---- class 5: depth and width -----------------------------------------------------------------

describe('deep and wide trees: every walk is iterative', () => {
  const chain = (depth: number): TreeNode => {
    let n = dir('d', [file('leaf'), symlink('up', '..')]);
    for (let i = 1; i < depth; i++) n = dir('d', [n]);
    return dir('', [n]);
  };

  it('a 4096-deep chain loads, checks, inspects, unpacks and converts', async () => {
    const boot = join(work, 'deep.boot');
    writeFileSync(boot, buildV6(chain(LIMITS.DEPTH_MAX.value)));
    const img = openImage(boot);
    let depth = 0;
    for (let n: ImageNode | undefined = img.root; n?.children; n = n.children.find((c) => c.children)) depth++;
    expect(depth - 1).toBe(LIMITS.DEPTH_MAX.value);
    expect(check(boot).image.root.children).toHaveLength(1);
    expect(inspectReport(img)).toContain(`files (${LIMITS.DEPTH_MAX.value + 3}):`);
    expect(JSON.parse(JSON.stringify(inspectRequest(img, 'stats').value))).toEqual({ inodes_count: LIMITS.DEPTH_MAX.value + 3 });
    const out = join(work, 'deep.tar');
    await unpack({ bootstrap: boot, output: out });
    expect(readFileSync(out).length).toBeGreaterThan(512 * LIMITS.DEPTH_MAX.value);
    expect(treeFromImage(img, []).root.children).toHaveLength(1);
  });

  it('one level more is refused naming the path and the limit', () => {
    const boot = buildV6(chain(LIMITS.DEPTH_MAX.value + 1));
    const e = refusal(() => loadV6(boot));
    expect(e.message).toMatch(/^directory "\/d(\/d)+": 4097 exceeds DEPTH_MAX \(4096\)/);
  });

  it('a directory of 200,000 entries inspects', () => {
    const f = file('f');
    const names = Array.from({ length: 200_000 }, (_, i) => link(`e${i}`, f));
    const img = loadV6(buildV6(dir('', [f, ...names])));
    expect(img.root.children).toHaveLength(200_001);
    expect(inspectReport(img)).toContain('files (200002):');
    // export plans its disk over the same tree: it spread the children into push() and overflowed.
    expect(planDisk(buildV6(dir('', [f, ...names])), img, work).blobs).toHaveLength(0);
  });
});
