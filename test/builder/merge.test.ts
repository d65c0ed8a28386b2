// `merge` of layers built by our own `create` from directories made here (whiteouts as plain
// `.wh.*` files, as the converter's fallback leaves them): the merged tree is the overlay result,
// every file reads back from the right layer's blob, the blob table is in first-use order, and the
// merged bootstrap mounted alone by the kernel shows the expected metadata.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import { merge, type MergeOptions } from '../../src/builder/merge.js';
import { NydusError } from '../../src/errors.js';
import { openImage } from '../../src/read/open.js';
import { isDir, isReg, type ImageNode, type RafsImage } from '../../src/read/model.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';
import * as bt from '../../src/format/rafs/blob-table.js';
import { blobIdFromFileName } from '../../src/builder/blob-table.js';
import { xattr as native } from '../helpers/native.js';
import { prng } from '../helpers/tree.js';
import { compareTrees } from '../helpers/compare.js';
import { kernelSupport, mountErofs, skipLoudly } from '../helpers/kernel.js';
import { imageEntries, readBackAndCompare } from './read-back.js';
import { BlobReader } from '../../src/read/data.js';

// ---------------------------------------------------------------------------------------------
// Trees as data: each layer, and the expected merge, are materialised from these.

type Xattrs = Record<string, string>;
type Entry =
  | { t: 'f'; data: string | Buffer; x?: Xattrs; mode?: number; at?: number }
  | { t: 'd'; kids: Spec; x?: Xattrs; mode?: number; at?: number }
  | { t: 's'; target: string; at?: number }
  /** A hard link to an earlier regular file of the same tree (path relative to the root). */
  | { t: 'h'; to: string };
type Spec = Record<string, Entry>;

const f = (data: string | Buffer, more: { x?: Xattrs; mode?: number; at?: number } = {}): Entry => ({ t: 'f', data, ...more });
const d = (kids: Spec, more: { x?: Xattrs; mode?: number; at?: number } = {}): Entry => ({ t: 'd', kids, ...more });
const s = (target: string, at?: number): Entry => ({ t: 's', target, at });
const h = (to: string): Entry => ({ t: 'h', to });

/** mtime (seconds) of everything a layer adds; entry `at` picks another layer's (expected tree). */
const MTIME = [1_600_000_000, 1_650_000_000, 1_700_000_000, 1_750_000_000];

function materialize(root: string, spec: Spec, layer: number): void {
  fs.mkdirSync(root, { recursive: true });
  const links: Array<[string, string]> = [];
  const times: Array<[string, number]> = [];
  const walk = (dir: string, sp: Spec) => {
    for (const [name, e] of Object.entries(sp)) {
      const p = join(dir, name);
      if (e.t === 'h') {
        links.push([join(root, e.to), p]);
        continue;
      }
      const mtime = MTIME[e.at ?? layer];
      if (e.t === 'f') {
        fs.writeFileSync(p, e.data);
        fs.chmodSync(p, e.mode ?? 0o644);
      } else if (e.t === 'd') {
        fs.mkdirSync(p);
        fs.chmodSync(p, e.mode ?? 0o755);
        walk(p, e.kids);
      } else {
        fs.symlinkSync(e.target, p);
      }
      if (e.t !== 's') for (const [k, v] of Object.entries(e.x ?? {})) native.lset(Buffer.from(p), Buffer.from(k), Buffer.from(v));
      times.push([p, mtime]);
    }
  };
  walk(root, spec);
  for (const [to, p] of links) fs.linkSync(to, p);
  // Children were listed before their parents' last change; set times deepest first.
  for (const [p, t] of times.reverse()) fs.lutimesSync(p, t, t);
  fs.chmodSync(root, 0o755);
}

// ---------------------------------------------------------------------------------------------
// The three layers and what merging them must give.

const SH = prng(11, 300_000);
const CHUNK = 0x10000;

const L0: Spec = {
  '.wh.bottom': f(''),
  bin: d({ sh: f(SH, { mode: 0o755 }) }),
  etc: d({ passwd: f('root:0\n'), hosts: f('127.0.0.1 localhost\n') }),
  opq: d({ a: f('a0'), b: f('b0'), sub: d({ c: f('c0') }) }),
  rmdir: d({ x: f('x0'), y: d({ z: f('z0') }) }),
  rmfile: f('gone'),
  dirfile: d({ inner: f('inner0') }),
  hl: d({ one: f('linked data\n'), two: h('hl/one'), three: h('hl/one') }),
  'x.txt': f('x0', { x: { 'user.l0': 'v0' } }),
};
const L1: Spec = {
  '.wh.rmdir': f(''),
  '.wh.rmfile': f(''),
  etc: d({ passwd: f('root:x:0:0\n') }, { x: { 'user.dir': 'etc1' } }),
  dirfile: f('now a file\n'),
  hl: d({ one: f('replaced one\n') }),
  'x.txt': f('x1', { x: { 'user.l1': 'v1' } }),
  new: d({ dir: d({ file: f('in new dir') }), keep: f('keep1') }),
  l1only: f(prng(12, 70_000)),
};
const L2: Spec = {
  opq: d({ '.wh..wh..opq': f(''), fresh: f('fresh2') }, { mode: 0o750 }),
  dirfile: d({ again: f('again2') }),
  new: d({ '.wh.dir': f('') }),
  etc: d({ shadow: f('shadow2', { mode: 0o600 }) }, { x: { 'user.dir': 'etc2' } }),
};
const EXPECTED: Spec = {
  '.wh.bottom': f('', { at: 0 }),
  bin: d({ sh: f(SH, { mode: 0o755, at: 0 }) }, { at: 0 }),
  dirfile: d({ again: f('again2', { at: 2 }) }, { at: 2 }),
  etc: d({
    passwd: f('root:x:0:0\n', { at: 1 }),
    hosts: f('127.0.0.1 localhost\n', { at: 0 }),
    shadow: f('shadow2', { mode: 0o600, at: 2 }),
  }, { x: { 'user.dir': 'etc2' }, at: 2 }),
  hl: d({ one: f('replaced one\n', { at: 1 }), two: f('linked data\n', { at: 0 }), three: h('hl/two') }, { at: 1 }),
  l1only: f(prng(12, 70_000), { at: 1 }),
  new: d({ keep: f('keep1', { at: 1 }) }, { at: 2 }),
  opq: d({ fresh: f('fresh2', { at: 2 }) }, { mode: 0o750, at: 2 }),
  'x.txt': f('x1', { x: { 'user.l1': 'v1' }, at: 1 }),
};
/** Which layer each merged regular file's data must come from. */
const DATA_FROM: Record<string, number> = {
  'bin/sh': 0, 'dirfile/again': 2, 'etc/passwd': 1, 'etc/hosts': 0, 'etc/shadow': 2,
  'hl/one': 1, 'hl/two': 0, 'hl/three': 0, l1only: 1, 'new/keep': 1, 'opq/fresh': 2, 'x.txt': 1,
};

// ---------------------------------------------------------------------------------------------

let work = '';
let blobs = '';
let expectedDir = '';
/** Per layer: its blob id and its bootstrap, named <id>.boot. */
const layers: Array<{ id: string; boot: string }> = [];

async function buildLayer(name: string, spec: Spec, layer: number, opts: { chunkSize?: number } = {}): Promise<{ id: string; boot: string }> {
  const src = join(work, 'src', name);
  materialize(src, spec, layer);
  const tmp = join(work, `${name}.tmp.boot`);
  // As the converter builds layers: markers stay plain files for merge to interpret.
  const r = await create({ source: src, bootstrap: tmp, blobDir: blobs, chunkSize: opts.chunkSize ?? CHUNK, whiteoutSpec: 'none', threads: 0 });
  const id = r.blobs[0] ?? `${name}-meta-only`;
  const boot = join(work, 'boots', `${id}.boot`);
  fs.renameSync(tmp, boot);
  return { id, boot };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-merge-'));
  blobs = join(work, 'blobs');
  fs.mkdirSync(blobs);
  fs.mkdirSync(join(work, 'boots'));
  for (const [i, spec] of [L0, L1, L2].entries()) layers.push(await buildLayer(`l${i}`, spec, i));
  expectedDir = join(work, 'expected');
  materialize(expectedDir, EXPECTED, 2);
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const out = (name: string) => join(work, 'out', name);
async function mergeTo(name: string, o: Omit<MergeOptions, 'bootstrap'>): Promise<{ image: RafsImage; path: string; blobs: string[] }> {
  fs.mkdirSync(join(work, 'out'), { recursive: true });
  const r = await merge({ bootstrap: out(name), ...o });
  expect(r.bootstrap).toBe(out(name));
  return { image: openImage(r.bootstrap), path: r.bootstrap, blobs: r.blobs };
}

/** Path → node of an image ('' is the root). */
function byPath(image: RafsImage): Map<string, ImageNode> {
  return new Map([...imageEntries(image.root)].map(([rel, n]) => [rel.toString('latin1'), n]));
}

/** Readable shape of an image tree. */
function shape(n: ImageNode): unknown {
  const o: Record<string, unknown> = {};
  for (const c of n.children ?? []) o[c.name.toString('latin1') + (isDir(c.mode) ? '/' : '')] = isDir(c.mode) ? shape(c) : 1;
  return o;
}
function specShape(sp: Spec): unknown {
  const o: Record<string, unknown> = {};
  for (const [k, e] of Object.entries(sp)) o[k + (e.t === 'd' ? '/' : '')] = e.t === 'd' ? specShape(e.kids) : 1;
  return o;
}

/** Blob ids in upstream's first-use order: root, a directory's children in order, then its subdirectories. */
function firstUse(image: RafsImage): string[] {
  const seen: string[] = [];
  const visit = (dir: ImageNode) => {
    for (const c of dir.children ?? []) {
      for (const ch of c.chunks ?? []) {
        const id = image.blobs[ch.blobIndex].blobId;
        if (!seen.includes(id)) seen.push(id);
      }
    }
    for (const c of dir.children ?? []) if (isDir(c.mode)) visit(c);
  };
  visit(image.root);
  return seen;
}

describe('merge of three layers built from directories', () => {
  let merged: Awaited<ReturnType<typeof mergeTo>>;
  beforeAll(async () => {
    merged = await mergeTo('three', { sources: layers.map((l) => l.boot) });
  });

  it('gives the overlay result: deletions, an opaque dir, a dir → file → dir, a whited-out subdir; the bottom layer\'s markers stay', () => {
    expect(shape(merged.image.root)).toEqual(specShape(EXPECTED));
  });

  it('takes attributes and xattrs from the layer that wrote each entry last', () => {
    const p = byPath(merged.image);
    const x = (rel: string) => Object.fromEntries(p.get(rel)!.xattrs.map((a) => [a.name.toString(), a.value.toString()]));
    expect(x('x.txt')).toEqual({ 'user.l1': 'v1' });
    expect(x('etc')).toEqual({ 'user.dir': 'etc2' });
    expect(p.get('etc')!.mtime).toBe(MTIME[2]);
    expect(p.get('etc/hosts')!.mtime).toBe(MTIME[0]);
    expect(p.get('opq')!.mode & 0o7777).toBe(0o750);
    expect(p.get('hl')!.mtime).toBe(MTIME[1]);
    expect(merged.image.flags & ext.FLAG_HAS_XATTR).toBeTruthy();
    expect(merged.image.flags & ext.FLAG_EXPLICIT_UID_GID).toBeTruthy();
    expect(merged.image.flags & ext.FLAG_ENCRYPTION_NONE).toBeTruthy();
    expect(merged.image.compressor).toBe('zstd');
    expect(merged.image.chunkSize).toBe(CHUNK);
  });

  it('keeps the rest of a hardlink group linked when one name is replaced upstairs', () => {
    const p = byPath(merged.image);
    const [one, two, three] = ['hl/one', 'hl/two', 'hl/three'].map((r) => p.get(r)!);
    expect(two.ino).toBe(three.ino);
    expect(one.ino).not.toBe(two.ino);
    expect(two.nlink).toBe(2);
    expect(one.nlink).toBe(1);
  });

  it('reads every file back, verified, with the bytes of the expected tree', () => {
    const r = readBackAndCompare(merged.image, { blobDir: blobs }, expectedDir);
    expect(r.mismatches).toEqual([]);
    expect(r.files).toBe(Object.keys(DATA_FROM).length + 1);
  });

  it('points each file\'s chunks at the blob of the layer it came from', () => {
    const p = byPath(merged.image);
    for (const [rel, layer] of Object.entries(DATA_FROM)) {
      const n = p.get(rel)!;
      expect(n.chunks!.length, rel).toBeGreaterThan(0);
      for (const c of n.chunks!) expect(merged.image.blobs[c.blobIndex].blobId, rel).toBe(layers[layer].id);
    }
    expect(p.get('bin/sh')!.chunks).toHaveLength(Math.ceil(SH.length / CHUNK));
  });

  it('lists blobs by first use, not layer order, under the ids the file names carry', () => {
    // Root files first: l1only and x.txt (layer 1); then bin/sh (layer 0); then dirfile/again (layer 2).
    expect(merged.blobs).toEqual([layers[1].id, layers[0].id, layers[2].id]);
    expect(merged.image.blobs.map((b) => b.blobId)).toEqual(merged.blobs);
    expect(firstUse(merged.image)).toEqual(merged.blobs);
    for (const b of merged.image.blobs) {
      expect(b.features & bt.FEATURE_INLINED_FS_META).toBe(0);
      expect(b.index).toBe(merged.image.blobs.indexOf(b));
    }
  });

  it('mounted alone by the kernel, shows the expected tree\'s metadata', async (ctx) => {
    const k = kernelSupport();
    if (!k.ok) skipLoudly(ctx, `kernel cannot mount EROFS here: ${k.why}`);
    const m = await mountErofs(merged.path, { loop: true });
    try {
      expect(await compareTrees(expectedDir, m.dir, { contents: false, ignoreRootMtime: true })).toEqual([]);
    } finally {
      await m.unmount();
    }
  });

  it('writes the same bytes with sources opened beforehand (`opened`, as nydusify passes them), and opens the rest itself', async () => {
    const out = join(work, 'opened.boot');
    const opened = new Map([layers[0].boot, layers[2].boot].map((b) => [b, openImage(b)] as const));
    await merge({ sources: layers.map((l) => l.boot), bootstrap: out, opened });
    expect(fs.readFileSync(out).equals(fs.readFileSync(merged.path))).toBe(true);
    // The images given are the ones merged: one that differs from its file changes the result.
    const other = new Map([[layers[1].boot, openImage(layers[2].boot)]]);
    await merge({ sources: layers.map((l) => l.boot), bootstrap: join(work, 'other.boot'), opened: other });
    expect(fs.readFileSync(join(work, 'other.boot')).equals(fs.readFileSync(merged.path))).toBe(false);
  });

  it('writes -D DIR/<sha256 of the bootstrap> when there is no -B, and the same bytes', async () => {
    const dir = join(work, 'dout');
    fs.mkdirSync(dir);
    const r = await merge({ sources: layers.map((l) => l.boot), blobDir: dir });
    const bytes = fs.readFileSync(r.bootstrap);
    const { createHash } = await import('node:crypto');
    expect(r.bootstrap).toBe(join(dir, createHash('sha256').update(bytes).digest('hex')));
    expect(bytes.equals(fs.readFileSync(merged.path))).toBe(true);
    expect(fs.readdirSync(dir)).toHaveLength(1);
  });
});

describe('merge: blob table', () => {
  it('drops the blob of a layer whose data is all whited out, and handles a layer without a blob', async () => {
    const wipe = await buildLayer('wipe', { '.wh..wh..opq': f(''), only: f('only3') }, 3);
    const metaOnly = await buildLayer('metaonly', { '.wh.bin': f('', { at: 3 }), emptydir: d({}) }, 3);
    expect(metaOnly.id).toBe('metaonly-meta-only');
    const a = await mergeTo('wiped', { sources: [layers[0].boot, layers[1].boot, wipe.boot] });
    expect(shape(a.image.root)).toEqual({ only: 1 });
    expect(a.blobs).toEqual([wipe.id]);
    const b = await mergeTo('metaonly', { sources: [layers[0].boot, metaOnly.boot] });
    expect(Object.keys(shape(b.image.root) as object)).not.toContain('bin/');
    expect(b.blobs).toEqual([layers[0].id]);
    // No blobs at all: a valid image with an empty table.
    const c = await mergeTo('nothing', { sources: [metaOnly.boot] });
    expect(c.blobs).toEqual([]);
    expect(c.image.flags & ext.FLAG_INLINED_CHUNK_DIGEST).toBeTruthy();
  });

  it('takes ids from --original-blob-ids, then --blob-digests; sizes and TOC fields from the lists', async () => {
    const digest = 'ab'.repeat(32);
    const toc = ['11'.repeat(32), '22'.repeat(32), '33'.repeat(32)];
    const r = await mergeTo('ids', {
      sources: layers.map((l) => l.boot),
      originalBlobIds: ['orig0', 'orig1', 'orig2'],
      blobDigests: [digest, 'CD'.repeat(32), 'ef'.repeat(32)],
      blobSizes: [100, 200, 300],
      blobTocDigests: toc,
      blobTocSizes: [1, 2, 3],
    });
    expect(r.blobs).toEqual(['cd'.repeat(32), digest, 'ef'.repeat(32)]);
    const byId = new Map(r.image.blobs.map((b) => [b.blobId, b]));
    expect(byId.get(digest)!.compressedSize).toBe(100);
    expect(byId.get('cd'.repeat(32))!.compressedSize).toBe(200);
    expect(byId.get(digest)!.tocDigest.toString('hex')).toBe(toc[0]);
    expect(byId.get('ef'.repeat(32))!.tocSize).toBe(3);
    const named = await mergeTo('orig', { sources: layers.map((l) => l.boot), originalBlobIds: ['orig0', 'orig1', 'orig2'] });
    expect(named.blobs).toEqual(['orig1', 'orig0', 'orig2']);
  });

  it('names a layer\'s blob by its file name with every extension stripped, not by the id inside', async () => {
    const copy = join(work, 'boots', 'renamed.boot.tar');
    fs.copyFileSync(layers[0].boot, copy);
    const r = await mergeTo('renamed', { sources: [copy] });
    expect(r.blobs).toEqual(['renamed']);
    expect(blobIdFromFileName('/x/abc.boot.tar')).toBe('abc');
    expect(blobIdFromFileName('.hidden.boot')).toBe('.hidden');
  });

  it('keeps the ids of blobs the chunk dict lists', async () => {
    const copy = join(work, 'boots', 'other.boot');
    fs.copyFileSync(layers[0].boot, copy);
    const r = await mergeTo('dict', { sources: [copy], chunkDict: `bootstrap=${layers[0].boot}` });
    expect(r.blobs).toEqual([layers[0].id]);
    const bare = await mergeTo('dict-bare', { sources: [copy], chunkDict: layers[0].boot });
    expect(bare.blobs).toEqual([layers[0].id]);
  });

  it('layers on a parent bootstrap: its blobs keep their ids, the result equals the flat merge', async () => {
    const parent = await mergeTo('parent', { sources: [layers[0].boot, layers[1].boot] });
    const r = await mergeTo('child', { sources: [layers[2].boot], parentBootstrap: parent.path });
    const flat = fs.readFileSync(out('three'));
    expect(fs.readFileSync(r.path).equals(flat)).toBe(true);
  });

  it('accepts a data blob with its bootstrap inline as a source, named by its file name', async () => {
    const src = join(work, 'src', 'inline');
    materialize(src, { a: f('inline data') }, 0);
    const dir = join(work, 'inline-blobs');
    fs.mkdirSync(dir);
    const c = await create({ source: src, blobDir: dir, blobInlineMeta: true, blobToc: true, chunkSize: CHUNK, whiteoutSpec: 'none', threads: 0 });
    const blobPath = join(dir, c.blobs[0]);
    const r = await mergeTo('inline', { sources: [layers[0].boot, blobPath] });
    expect(r.blobs).toEqual([c.blobs[0], layers[0].id]);
    const a = byPath(r.image).get('a')!;
    expect(isReg(a.mode)).toBe(true);
    const reader = new BlobReader(r.image, { blobDir: dir });
    try {
      expect(Buffer.concat([...reader.readFile(a, true)]).toString()).toBe('inline data');
    } finally {
      reader.close();
    }
  });
});

describe('merge: prefetch', () => {
  it('lists the nids of the patterns that exist, in pattern order; covered, relative and empty-file patterns are dropped', async () => {
    const warnings: string[] = [];
    const r = await mergeTo('prefetch', {
      sources: layers.map((l) => l.boot),
      prefetch: ['/etc/', '/bin/sh', 'relative/path', '/etc/passwd', '/missing', '/.wh.bottom', '/hl/three'],
      warn: (m) => warnings.push(m),
    });
    const p = byPath(r.image);
    expect(r.image.prefetch).toEqual([p.get('etc')!.ino, p.get('bin/sh')!.ino, p.get('hl/three')!.ino]);
    expect(warnings).toHaveLength(2);
    const root = await mergeTo('prefetch-root', { sources: layers.map((l) => l.boot), prefetch: ['/', '/etc'] });
    expect(root.image.prefetch).toEqual([root.image.root.ino]);
    const none = await mergeTo('prefetch-none', { sources: layers.map((l) => l.boot) });
    expect(none.image.prefetch).toEqual([]);
  });
});

describe('merge: bad inputs fail with a clear error and write nothing', () => {
  async function fails(name: string, o: Omit<MergeOptions, 'bootstrap'>, code: string, message: RegExp): Promise<void> {
    fs.mkdirSync(join(work, 'out'), { recursive: true });
    const err = await merge({ bootstrap: out(name), ...o }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(NydusError);
    expect((err as NydusError).code).toBe(code);
    expect((err as NydusError).message).toMatch(message);
    expect((err as NydusError).message).not.toContain('\n');
    expect(fs.existsSync(out(name))).toBe(false);
    expect(fs.readdirSync(join(work, 'out')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  }

  it('mismatched chunk sizes (exit 2, as upstream)', async () => {
    const big = await buildLayer('bigchunk', { z: f('z') }, 0, { chunkSize: 0x100000 });
    await fails('chunks', { sources: [layers[0].boot, big.boot] }, 'USAGE', /chunk size 0x100000, expected 0x10000/);
    await fails('chunks-parent', { sources: [layers[0].boot], parentBootstrap: big.boot }, 'USAGE', new RegExp(`^${big.boot}: .*chunk size 0x100000, expected 0x10000`));
    expect(new NydusError('USAGE', '').exit).toBe(2);
  });

  it('a missing source', async () => {
    await fails('missing', { sources: [layers[0].boot, join(work, 'nope.boot')] }, 'SOURCE', /nope\.boot: no such file or directory/);
  });

  it('a source that is not a bootstrap', async () => {
    const junk = join(work, 'junk.boot');
    fs.writeFileSync(junk, Buffer.alloc(8192, 1));
    await fails('junk', { sources: [junk] }, 'FORMAT', /junk\.boot: not a RAFS bootstrap/);
  });

  it('lists with the wrong number of items, and bad items', async () => {
    const sources = layers.map((l) => l.boot);
    await fails('n1', { sources, originalBlobIds: ['a', 'b'] }, 'USAGE', /number of original blob id entries 2 doesn't match number of sources 3/);
    await fails('n2', { sources, blobDigests: ['ab'.repeat(32)] }, 'USAGE', /number of blob digest entries 1 doesn't match number of sources 3/);
    await fails('n3', { sources, blobSizes: [1, 2, 3, 4] }, 'USAGE', /blob size entries 4/);
    await fails('n4', { sources, blobTocDigests: [] }, 'USAGE', /toc digest entries 0/);
    await fails('n5', { sources, blobTocSizes: [1] }, 'USAGE', /toc size entries 1/);
    await fails('n6', { sources, blobDigests: ['xy', 'ab'.repeat(32), 'ab'.repeat(32)] }, 'USAGE', /invalid --blob-digests item "xy"/);
  });

  it('an id longer than 64 bytes, a source with two own blobs, an empty source list', async () => {
    const long = join(work, 'boots', `sha256:${'a'.repeat(64)}`);
    fs.copyFileSync(layers[0].boot, long);
    await fails('long', { sources: [long] }, 'SOURCE', /RAFS v6 blob ids are 1 to 64 bytes/);
    await fails('two', { sources: [out('three')] }, 'SOURCE', /having multiple associated data blobs/);
    await fails('empty', { sources: [] }, 'USAGE', /source bootstrap list is empty/);
  });

  it('no -B and no -D', async () => {
    const err = await merge({ sources: [layers[0].boot] }).then(() => undefined, (e: unknown) => e);
    expect((err as NydusError).message).toMatch(/both --bootstrap and --blob-dir are missing/);
  });
});
