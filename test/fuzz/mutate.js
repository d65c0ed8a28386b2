// Mutations: generic byte-level ones, RAFS v6 structural ones (fields to their limits, names,
// blob ids, synthesized deep, wide and amplifying trees), tar and gzip ones, inline TOC ones.
// Each returns a new Buffer and a short description for the reproducer.
import * as zlib from 'node:zlib';
import * as v6 from './v6.js';
import * as tar from './tar.js';

const INTERESTING = [
  0, 1, 2, 3, 7, 8, 0x10, 0x1f, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0x3ff, 0x400, 0xfff, 0x1000, 0x1001,
  0x7fff, 0x8000, 0xffff, 0x10000, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
  2 ** 32, 2 ** 33, 2 ** 40, 2 ** 44, 2 ** 44 + 1, 2 ** 48, 2 ** 53 - 1, 2 ** 53, 2n ** 63n, 2n ** 64n - 1n,
];

function interesting(rng, cur, width, ctx = {}) {
  const max = 2n ** BigInt(width * 8) - 1n;
  const choices = [
    () => rng.pick(INTERESTING),
    () => BigInt(cur) + 1n,
    () => BigInt(cur) - 1n,
    () => BigInt(cur) * 2n,
    () => BigInt(cur) * 1000n,
    () => max,
    () => max >> 1n,
    () => ctx.len ?? 0,
    () => Math.floor((ctx.len ?? 0) / 32),
    () => (ctx.len ?? 0) + rng.int(8192),
    () => rng.u32(),
    () => BigInt(rng.u32()) * 2n ** 32n + BigInt(rng.u32()),
  ];
  let v = BigInt(rng.pick(choices)());
  if (v < 0n) v = max;
  return v & max;
}

// ---------------------------------------------------------------------------------------------
// Generic

export function bitflip(rng, b) {
  const out = Buffer.from(b);
  const n = rng.range(1, 8);
  for (let i = 0; i < n && out.length > 0; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return { b: out, what: `bitflip x${n}` };
}

export function setInt(rng, b, ctx) {
  const out = Buffer.from(b);
  if (out.length < 8) return bitflip(rng, b);
  const width = rng.pick([1, 2, 4, 8]);
  const off = rng.int(Math.floor((out.length - width) / width) + 1) * width;
  const cur = width === 8 ? out.readBigUInt64LE(off) : width === 4 ? out.readUInt32LE(off) : width === 2 ? out.readUInt16LE(off) : out[off];
  const v = interesting(rng, cur, width, { len: b.length, ...ctx });
  v6.put(out, off, width, v);
  return { b: out, what: `u${width * 8}@${off}=${v}` };
}

export function truncate(rng, b) {
  const cut = rng.weighted([[3, () => rng.int(b.length)], [2, () => Math.floor(rng.int(b.length) / 4096) * 4096], [2, () => Math.floor(rng.int(b.length) / 512) * 512], [1, () => b.length - rng.range(1, 16)]])();
  const n = Math.max(0, Math.min(b.length, cut));
  return { b: Buffer.from(b.subarray(0, n)), what: `truncate to ${n}` };
}

export function splice(rng, b, other) {
  const src = other && other.length > 0 ? other : b;
  const len = Math.min(src.length, rng.range(1, 4096));
  const from = rng.int(src.length - len + 1);
  const to = rng.int(Math.max(1, b.length - len + 1));
  const out = Buffer.from(b);
  src.copy(out, to, from, from + len);
  return { b: out, what: `splice ${len}@${from}->${to}` };
}

export function zeroRange(rng, b) {
  if (b.length === 0) return extend(rng, b);
  const out = Buffer.from(b);
  const len = rng.range(1, 1024);
  const at = rng.int(Math.max(1, out.length));
  out.fill(rng.pick([0, 0xff]), at, Math.min(at + len, out.length));
  return { b: out, what: `fill ${len}@${at}` };
}

export function extend(rng, b) {
  const add = rng.pick([1, 511, 512, 4096, 65536]);
  return { b: Buffer.concat([b, rng.chance(0.5) ? Buffer.alloc(add) : rng.bytes(Math.min(add, 4096))]), what: `extend +${add}` };
}

export function generic(rng, b, other) {
  return rng.weighted([[4, bitflip], [4, setInt], [2, truncate], [2, splice], [1, zeroRange], [1, extend]])(rng, b, other);
}

// ---------------------------------------------------------------------------------------------
// RAFS v6

function v6Field(rng, b, L) {
  const fld = rng.pick(L.fields);
  const out = Buffer.from(b);
  const w = fld.width;
  const cur = w === 8 ? out.readBigUInt64LE(fld.off) : w === 4 ? out.readUInt32LE(fld.off) : w === 2 ? out.readUInt16LE(fld.off) : out[fld.off];
  let v = interesting(rng, cur, w, { len: b.length });
  if (fld.name.endsWith('.nid') && rng.chance(0.5)) v = BigInt(rng.pick(L.inodes).nid);
  if (fld.name.endsWith('.i_mode') && rng.chance(0.6)) v = BigInt(rng.pick([0o100644, 0o40755, 0o120777, 0o20644, 0o60644, 0o10644, 0o140644, 0o4755, 0o170777, 0]));
  if (fld.name.endsWith('.device_id') && rng.chance(0.5)) v = BigInt(rng.pick([0, 2, 255, L.extraDevices, L.extraDevices + 1]));
  v6.put(out, fld.off, w, v);
  return { b: out, what: `${fld.name}=${v}` };
}

function pickBlock(rng, L, pred = () => true) {
  const cands = [];
  for (const d of L.dirs) for (const blk of d.blocks) if (pred(d, blk)) cands.push([d, blk]);
  return cands.length ? rng.pick(cands) : undefined;
}

function hostileName(rng, entries) {
  const siblings = entries.map((e) => e.name.toString('latin1')).filter((n) => n !== '.' && n !== '..');
  const s = siblings.length ? rng.pick(siblings) : 'x';
  return Buffer.from(rng.weighted([
    [6, () => rng.pick(v6.HOSTILE_NAMES)],
    [3, () => `${s}/${rng.pick(['x', '..', '../..', 'pwn', '.'])}`],
    [1, () => `${s}\0`],
    [1, () => 'd'.repeat(rng.range(250, 4000))],
  ])(), 'latin1');
}

/** Renames, duplicates, adds or repoints entries of one directory block. */
function v6Dirent(rng, b, L) {
  const pick = pickBlock(rng, L);
  if (!pick) return undefined;
  const [dir, blk] = pick;
  const out = Buffer.from(b);
  const entries = blk.entries.map((e) => ({ ...e }));
  const real = entries.filter((e) => e.name.length > 2 || !e.name.every((c) => c === 0x2e));
  const op = rng.pick(['rename', 'rename', 'rename', 'duplicate', 'repoint', 'add', 'drop-dots', 'unsorted', 'self']);
  let what;
  if (op === 'rename' && real.length) {
    const e = rng.pick(real);
    const old = e.name;
    e.name = hostileName(rng, entries);
    what = `rename ${JSON.stringify(old.toString('latin1'))} -> ${JSON.stringify(e.name.toString('latin1').slice(0, 60))}`;
  } else if (op === 'duplicate' && real.length) {
    const e = rng.pick(real);
    entries.push({ ...e, name: Buffer.from(e.name) });
    what = `duplicate ${JSON.stringify(e.name.toString('latin1'))}`;
  } else if (op === 'repoint' && entries.length) {
    const e = rng.pick(entries);
    const target = rng.pick([...L.inodes.map((i) => i.nid), L.rootNid, dir.nid, 2 ** 32, 2 ** 53 - 1, 0]);
    e.nid = target;
    what = `repoint ${JSON.stringify(e.name.toString('latin1'))} -> nid ${target}`;
  } else if (op === 'add') {
    const t = rng.pick(L.inodes);
    const name = hostileName(rng, entries);
    entries.push({ nid: t.nid, file_type: rng.range(0, 7), name });
    what = `add ${JSON.stringify(name.toString('latin1').slice(0, 60))} -> nid ${t.nid}`;
  } else if (op === 'drop-dots') {
    const keep = entries.filter((e) => !(e.name.length <= 2 && e.name.every((c) => c === 0x2e)));
    entries.length = 0;
    entries.push(...keep);
    what = 'drop . and ..';
  } else if (op === 'self') {
    entries.push({ nid: dir.nid, file_type: 2, name: Buffer.from('loop') });
    what = 'child is its own directory';
  } else {
    entries.reverse();
    if (!v6.rewriteBlock(out, L, dir, blk, entries, true)) return undefined;
    return { b: out, what: `dir@${dir.nid}: unsorted block` };
  }
  if (!what || !v6.rewriteBlock(out, L, dir, blk, entries)) return undefined;
  return { b: out, what: `dir@${dir.nid}: ${what}` };
}

function setBlobId(out, L, i, id) {
  for (const base of [L.blobs[i], L.slots[i]]) {
    if (base === undefined) continue;
    out.fill(0, base, base + 64);
    Buffer.from(id, 'latin1').copy(out, base, 0, 64);
  }
}

function v6BlobId(rng, b, L, ctx) {
  if (L.blobs.length === 0) return undefined;
  const out = Buffer.from(b);
  const i = rng.int(L.blobs.length);
  const id = rng.pick(v6.HOSTILE_BLOB_IDS(ctx.canaryRel));
  setBlobId(out, L, i, id);
  if (rng.chance(0.2) && L.slots[i] !== undefined) out.fill(0x41, L.slots[i], L.slots[i] + 64); // slot and table disagree
  return { b: out, what: `blob[${i}].blob_id=${JSON.stringify(id)}` };
}

/** An area of `n` bytes at the end whose offset is a valid nid (32-byte aligned past meta_blkaddr). */
function area(b, L, n) {
  const g = v6.grow(b, n);
  if (g.start < L.metaBase) return undefined;
  return { b: g.b, start: g.start, nid: (off) => (off - L.metaBase) / 32 };
}

function repointSome(rng, out, L, nid, type) {
  const blocks = L.dirs.flatMap((d) => d.blocks.map((blk) => [d, blk]));
  if (!blocks.length) return false;
  const [dir, blk] = rng.pick(blocks);
  const entries = blk.entries.map((e) => ({ ...e }));
  const real = entries.filter((e) => !(e.name.length <= 2 && e.name.every((c) => c === 0x2e)));
  if (real.length) {
    const e = rng.pick(real);
    e.nid = nid;
    e.file_type = type;
  } else entries.push({ nid, file_type: type, name: Buffer.from('zz') });
  return v6.rewriteBlock(out, L, dir, blk, entries);
}

/** A chain of `depth` directories, each inline with ".", ".." and one child. */
function v6Deep(rng, b, L) {
  const depth = rng.pick([100, 1000, 3000, 4095, 4097, 5000, 10000, 30000]);
  if (L.B !== 4096) return undefined;
  const SLOT = 128; // 64-byte inode + 3 dirents (36) + names "." ".." "d" (4) = 104
  const a = area(b, L, depth * SLOT + 4096);
  if (!a) return undefined;
  for (let k = 0; k < depth; k++) {
    const off = a.start + k * SLOT;
    const me = a.nid(off);
    const parent = k === 0 ? L.rootNid : a.nid(off - SLOT);
    const entries = [{ nid: me, file_type: 2, name: Buffer.from('.') }, { nid: parent, file_type: 2, name: Buffer.from('..') }];
    if (k + 1 < depth) entries.push({ nid: a.nid(off + SLOT), file_type: 2, name: Buffer.from('d') });
    const blk = v6.encodeBlock(entries);
    v6.extInode({ layout: 2, mode: 0o40755, size: blk.length, iu: 0, nlink: 2 }).copy(a.b, off);
    blk.copy(a.b, off + 64);
  }
  if (!repointSome(rng, a.b, L, a.nid(a.start), 2)) return undefined;
  return { b: a.b, what: `deep chain of ${depth} directories` };
}

/** One directory of `width` entries, all naming one inode (an empty file, or a file with chunks). */
function v6Wide(rng, b, L) {
  const width = rng.pick([1000, 10000, 70000, 200000]);
  const target = rng.pick(L.inodes.filter((i) => (i.mode & 0o170000) === 0o100000)) ?? L.inodes[0];
  const names = [];
  for (let k = 0; k < width; k++) names.push(Buffer.from(`e${String(k).padStart(7, '0')}`));
  const perBlock = Math.floor(L.B / (12 + 8));
  const nblocks = Math.ceil((width + 2) / perBlock);
  const a = area(b, L, 4096 + nblocks * L.B);
  if (!a) return undefined;
  const inodeOff = a.start;
  const dataStart = Math.ceil((a.start + 64) / L.B) * L.B;
  const me = a.nid(inodeOff);
  const all = [{ nid: me, file_type: 2, name: Buffer.from('.') }, { nid: L.rootNid, file_type: 2, name: Buffer.from('..') },
    ...names.map((name) => ({ nid: target.nid, file_type: 1, name }))];
  let size = 0;
  for (let k = 0; k < nblocks; k++) {
    const blk = v6.encodeBlock(all.slice(k * perBlock, (k + 1) * perBlock));
    blk.copy(a.b, dataStart + k * L.B);
    size = k * L.B + blk.length;
  }
  if (dataStart + nblocks * L.B > a.b.length) return undefined;
  v6.extInode({ layout: 0, mode: 0o40755, size, iu: dataStart / L.B, nlink: 2 }).copy(a.b, inodeOff);
  if (!repointSome(rng, a.b, L, me, 2)) return undefined;
  return { b: a.b, what: `wide directory of ${width} entries naming nid ${target.nid}` };
}

/**
 * One file inode whose chunk array has K entries, named by W entries of one directory: the
 * reader's work is K x W from K x 8 + W x 20 bytes of bootstrap.
 */
function v6SharedChunks(rng, b, L) {
  const cs = L.chunkSize;
  const chunkTable = L.chunks.map((o) => ({ o, blob: b.readUInt32LE(o + 32), usize: b.readUInt32LE(o + 44), uoff: u64(b, o + 56), index: b.readUInt32LE(o + 72) }));
  const full = chunkTable.find((c) => c.usize === cs) ?? chunkTable[0];
  const K = rng.pick([1000, 10000, 60000]);
  const W = rng.pick([100, 2000, 5000]);
  const perBlock = Math.floor(L.B / (12 + 8));
  const nblocks = Math.ceil((W + 2) / perBlock);
  const a = area(b, L, 64 + 8 + K * 8 + 4096 + nblocks * L.B + 4096);
  if (!a) return undefined;
  const fileOff = a.start;
  const fileNid = a.nid(fileOff);
  const word = 0x20 | (Math.log2(cs) - L.blkszbits);
  v6.extInode({ layout: 4, mode: 0o100644, size: K * cs, iu: word, nlink: W }).copy(a.b, fileOff);
  for (let k = 0; k < K; k++) {
    const o = fileOff + 64 + k * 8;
    const ci = full ? full.index : 0;
    a.b.writeUInt16LE(ci & 0xffff, o);
    a.b[o + 2] = full ? full.blob + 1 : 1;
    a.b[o + 3] = (ci >>> 16) & 0xff;
    a.b.writeUInt32LE(full ? Math.floor(full.uoff / L.B) : 0, o + 4);
  }
  const dirOff = Math.ceil((fileOff + 64 + K * 8) / 32) * 32;
  const dataStart = Math.ceil((dirOff + 64) / L.B) * L.B;
  const me = a.nid(dirOff);
  const all = [{ nid: me, file_type: 2, name: Buffer.from('.') }, { nid: L.rootNid, file_type: 2, name: Buffer.from('..') }];
  for (let k = 0; k < W; k++) all.push({ nid: fileNid, file_type: 1, name: Buffer.from(`h${String(k).padStart(7, '0')}`) });
  let size = 0;
  for (let k = 0; k < nblocks; k++) {
    const blk = v6.encodeBlock(all.slice(k * perBlock, (k + 1) * perBlock));
    if (dataStart + k * L.B + L.B > a.b.length) return undefined;
    blk.copy(a.b, dataStart + k * L.B);
    size = k * L.B + blk.length;
  }
  v6.extInode({ layout: 0, mode: 0o40755, size, iu: dataStart / L.B, nlink: 2 }).copy(a.b, dirOff);
  if (!repointSome(rng, a.b, L, me, 2)) return undefined;
  return { b: a.b, what: `shared chunk array: ${K} chunks named by ${W} entries (${a.b.length} bytes)` };
}

/** A symlink to outside and, beside it, an entry whose name leads through it. */
function v6ThroughSymlink(rng, b, L) {
  const pick = pickBlock(rng, L, (d, blk) => blk.entries.length >= 3);
  if (!pick) return undefined;
  const [dir, blk] = pick;
  const syms = L.inodes.filter((i) => (i.mode & 0o170000) === 0o120000);
  const files = L.inodes.filter((i) => (i.mode & 0o170000) === 0o100000);
  const dirs = L.inodes.filter((i) => (i.mode & 0o170000) === 0o040000);
  if (!syms.length || !files.length) return undefined;
  const out = Buffer.from(b);
  const entries = blk.entries.map((e) => ({ ...e })).filter((e) => !e.name.equals(Buffer.from('evil')));
  const s = rng.pick(syms);
  const inner = rng.pick([...files, ...dirs]);
  entries.push({ nid: s.nid, file_type: 7, name: Buffer.from('evil') });
  const name = rng.pick(['evil/pwn', 'evil/.', 'evil/../pwn', 'evil//pwn']);
  entries.push({ nid: inner.nid, file_type: (inner.mode & 0o170000) === 0o040000 ? 2 : 1, name: Buffer.from(name) });
  if (!v6.rewriteBlock(out, L, dir, blk, entries)) return undefined;
  return { b: out, what: `dir@${dir.nid}: symlink "evil" (nid ${s.nid}) and "${name}" (nid ${inner.nid})` };
}

/** Sets a symlink's target to something hostile (same length when inline, else rewrite in place). */
function v6SymlinkTarget(rng, b, L) {
  const syms = L.inodes.filter((i) => (i.mode & 0o170000) === 0o120000 && i.layout === 2);
  if (!syms.length) return undefined;
  const s = rng.pick(syms);
  const out = Buffer.from(b);
  const at = s.xoff + s.xsize;
  const t = Buffer.from(rng.pick(['/', '/etc', '../../../../', '/proc/self/cwd', '..', '.', 'x\0y', '']));
  const room = Math.min(L.B - (at % L.B), 64);
  if (t.length > room) return undefined;
  out.fill(0, at, at + Math.max(s.size, 0) > out.length ? at : at + s.size);
  t.copy(out, at);
  v6.put(out, s.off + 8, s.ext ? 8 : 4, t.length);
  return { b: out, what: `symlink@${s.nid} target ${JSON.stringify(t.toString('latin1'))}` };
}

/** Many or huge xattrs in one inode's inline area (i_xattr_icount and entry sizes). */
function v6Xattr(rng, b, L) {
  const withX = L.inodes.filter((i) => i.xsize > 0);
  const i = withX.length ? rng.pick(withX) : rng.pick(L.inodes);
  const out = Buffer.from(b);
  const op = rng.pick(['icount-max', 'entry-huge', 'index-bad', 'shared']);
  if (op === 'icount-max') v6.put(out, i.off + 2, 2, rng.pick([0xffff, 0xfffe, 1, 2, 0x8000]));
  else if (op === 'shared') v6.put(out, i.xoff + 4, 1, rng.pick([1, 0xff]));
  else if (i.xsize > 12) {
    const p = i.xoff + 12;
    if (op === 'entry-huge') v6.put(out, p + 2, 2, 0xffff);
    else v6.put(out, p + 1, 1, rng.pick([0, 5, 7, 0xff]));
  } else return undefined;
  return { b: out, what: `inode@${i.nid} xattr ${op}` };
}

const u64 = (b, o) => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 2 ** 32;

/** Claims about blobs: sizes, counts and slots against what the blob files hold. */
function v6BlobClaims(rng, b, L) {
  if (!L.blobs.length) return undefined;
  const out = Buffer.from(b);
  const i = rng.int(L.blobs.length);
  const o = L.blobs[i];
  const op = rng.pick(['usize', 'csize', 'count', 'mapped', 'features', 'ntable']);
  if (op === 'usize') v6.put(out, o + 96, 8, rng.pick([2 ** 36, 2 ** 40, 2 ** 44, 2 ** 44 + 1]));
  else if (op === 'csize') v6.put(out, o + 88, 8, rng.pick([2 ** 36, 2 ** 40, 0]));
  else if (op === 'count') v6.put(out, o + 72, 4, rng.pick([0, 0xffffff, 0x1000000, 0xffffffff]));
  else if (op === 'mapped' && L.slots[i] !== undefined) {
    v6.put(out, L.slots[i] + 68, 4, rng.pick([0xffffffff, 0xfffff000, 2 ** 24, 1]));
    v6.put(out, L.slots[i] + 64, 4, rng.pick([0xffffffff, 2 ** 24, 1]));
  } else if (op === 'features') v6.put(out, o + 84, 4, rng.pick([0x8, 0x80, 0x100, 0x40, 0x2, 0x10, 0x801, 0xffffffff]));
  else {
    v6.put(out, 1152 + 16, 4, rng.pick([256 * 255, 256 * 256, 256 * 4096]));
    v6.put(out, 1024 + 86, 2, rng.pick([255, 256, 0xffff]));
  }
  return { b: out, what: `blob[${i}] claim ${op}` };
}

export function mutateV6(rng, b, ctx) {
  const L = v6.layout(b);
  if (!L.ok) return generic(rng, b, ctx.other);
  for (let tries = 0; tries < 6; tries++) {
    const op = rng.weighted([
      [8, v6Field], [6, v6Dirent], [3, v6BlobId], [2, v6Deep], [2, v6Wide], [2, v6SharedChunks], [3, v6ThroughSymlink],
      [1, v6SymlinkTarget], [2, v6Xattr], [2, v6BlobClaims],
    ]);
    const r = op(rng, b, L, ctx);
    if (r) return r;
  }
  return generic(rng, b, ctx.other);
}

// ---------------------------------------------------------------------------------------------
// Inline blobs: TOC entries and the image.boot section at the end

export function mutateInlineTail(rng, b) {
  if (b.length < 1024) return generic(rng, b);
  const out = Buffer.from(b);
  const hdr = out.length - 512;
  const isToc = out.toString('latin1', hdr, hdr + 13) === 'rafs.blob.toc';
  if (isToc) {
    const size = parseInt(out.toString('latin1', hdr + 124, hdr + 136).replace(/[\0 ]/g, '') || '0', 8);
    const n = Math.floor(size / 128);
    if (n > 0 && size <= hdr) {
      const e = hdr - size + rng.int(n) * 128;
      const fld = rng.pick([[0, 4, 'flags'], [56, 8, 'compressed_offset'], [64, 8, 'compressed_size'], [72, 8, 'uncompressed_size']]);
      const v = rng.pick([0, 1, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53 - 1, 2n ** 64n - 1n, b.length, b.length - 1, 3, 4, 7]);
      v6.put(out, e + fld[0], fld[1], v);
      if (rng.chance(0.3)) out.write(rng.pick(['image.boot\0', 'blob.meta\0', 'x\0']), e + 8, 'latin1');
      return { b: out, what: `toc entry @${e} ${fld[2]}=${v}` };
    }
  }
  // The section header's size field, with a fixed checksum.
  const size = rng.pick([0, 1, 2 ** 33 - 1, b.length, b.length - 511, 2 ** 40]);
  out.write(size < 2 ** 33 ? size.toString(8).padStart(11, '0') : '77777777777', hdr + 124, 'latin1');
  tar.fixChecksum(out, hdr);
  return { b: out, what: `tail section size=${size}` };
}

// ---------------------------------------------------------------------------------------------
// Tars

function setOctal(h, off, len, v) {
  if (typeof v === 'string') {
    h.fill(0, off, off + len);
    h.write(v, off, len, 'latin1');
    return;
  }
  const s = v.toString(8);
  if (s.length <= len - 1) {
    h.write(s.padStart(len - 1, '0'), off, 'latin1');
    h[off + len - 1] = 0;
  } else {
    h.fill(0, off, off + len);
    const big = BigInt.asUintN(64, BigInt(v));
    h.writeBigUInt64BE(big, off + len - 8);
    h[off] = 0x80;
  }
}

const HOSTILE_TAR_NAMES = [
  '../x', '../../../../tmp/nydus-fuzz-escape', '/abs/path', 'a/../../b', './../x', 'x\0y', '', '.', './', '/', '..', 'a//b',
  'dir/', 'evil/pwn', 'f/g', 'N'.repeat(100), `${'n'.repeat(256)}`, `${'a/'.repeat(49)}b`, '.wh..wh..opq', 'd/.wh.x', '.wh.',
];

function tarHeaderField(rng, b, heads) {
  const h0 = rng.pick(heads);
  const out = Buffer.from(b);
  const h = out.subarray(h0.off, h0.off + 512);
  const op = rng.pick(['size', 'size', 'type', 'name', 'name', 'linkname', 'mode', 'uid', 'mtime', 'devmajor', 'magic', 'prefix', 'checksum']);
  let what = op;
  if (op === 'size') {
    const v = rng.pick([0, 1, 511, 512, 513, 2 ** 33 - 1, 2 ** 33, 2 ** 40, 2 ** 53, 2n ** 63n, 2n ** 64n - 1n, h0.size + 1, h0.size * 1000, '-1', '9', 'zz', ' 1 2']);
    setOctal(h, 124, 12, v);
    what = `size=${v}`;
  } else if (op === 'type') {
    const t = rng.pick(['0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'S', 'D', 'M', 'V', 'N', '\0', 'Z', '\xff']);
    h.write(t, 156, 'latin1');
    what = `type=${JSON.stringify(t)}`;
  } else if (op === 'name' || op === 'linkname') {
    const n = Buffer.from(rng.pick(HOSTILE_TAR_NAMES), 'latin1');
    const at = op === 'name' ? 0 : 157;
    h.fill(0, at, at + 100);
    n.copy(h, at, 0, 100);
    what = `${op}=${JSON.stringify(n.toString('latin1').slice(0, 40))}`;
  } else if (op === 'prefix') {
    h.fill(0, 345, 500);
    h.write(rng.pick(['..', '/', '../..', 'a'.repeat(155)]), 345, 'latin1');
  } else if (op === 'magic') {
    h.write(rng.pick(['ustar  \0', 'ustar\x0000', '\0\0\0\0\0\0\0\0', 'garbage!']), 257, 'latin1');
  } else if (op !== 'checksum') {
    const [off, len] = { mode: [100, 8], uid: [108, 8], mtime: [136, 12], devmajor: [329, 8] }[op];
    setOctal(h, off, len, rng.pick([0, 0o7777777, 2 ** 21, 2 ** 32, 2 ** 40, 2n ** 63n, 'x']));
  }
  if (op !== 'checksum' || rng.chance(0.5)) tar.fixChecksum(h);
  else h.write('0000000\0', 148, 'latin1');
  return { b: out, what: `tar header @${h0.off}: ${what}` };
}

function paxHostile(rng) {
  return rng.weighted([
    [3, () => [['path', rng.pick(HOSTILE_TAR_NAMES)]]],
    [2, () => [['linkpath', rng.pick(HOSTILE_TAR_NAMES)]]],
    [2, () => [['size', rng.pick(['-1', '1e9', '', '99999999999999999999', String(2 ** 40), 'x'])]]],
    [2, () => [['GNU.sparse.size', String(2 ** 40)], ['GNU.sparse.numblocks', '1'], ['GNU.sparse.offset', '0'], ['GNU.sparse.numbytes', '1']]],
    [2, () => [['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.realsize', String(rng.pick([2 ** 40, 2 ** 53, -1]))], ['GNU.sparse.name', 'sp']]],
    [1, () => [['GNU.sparse.map', rng.pick(['0,1,' + 2 ** 40 + ',1', '1,2,3', '-1,5', Array(20000).fill('0,0').join(',')])], ['GNU.sparse.size', '100']]],
    [2, () => Array.from({ length: rng.pick([6, 10]) }, (_, i) => [`SCHILY.xattr.user.big${i}`, 'v'.repeat(60000)])],
    [1, () => Array.from({ length: 5000 }, (_, i) => [`SCHILY.xattr.user.x${i}`, 'v'])],
    [1, () => [[`SCHILY.xattr.user.${'n'.repeat(300)}`, 'v']]],
    [1, () => [['SCHILY.xattr.', 'v'], ['SCHILY.xattr.bogus.ns', 'v']]],
    [1, () => [['uid', rng.pick(['-1', String(2 ** 40), 'abc'])], ['gid', '4294967296']]],
    [1, () => [['mtime', rng.pick(['-1.5', '1e20', 'nan', '99999999999999999999.9'])]]],
    [1, () => [['path', 'p/'.repeat(rng.pick([5000, 30000])) + 'f']]],
  ])();
}

function rawPax(rng) {
  const body = rng.pick([
    '99999999 path=x\n', '5 path=x\n', '12 path=x', '0 =\n', 'x path=y\n', '13 pathx\n', '18446744073709551617 path=x\n', '',
  ]);
  return Buffer.concat([tar.header({ name: 'PaxHeaders/x', type: 'x', size: body.length }), Buffer.from(body), Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

function insertBefore(rng, b, heads, chunk, what) {
  const h = heads.length ? rng.pick(heads) : { off: 0 };
  return { b: Buffer.concat([b.subarray(0, h.off), chunk, b.subarray(h.off)]), what: `${what} before @${h.off}` };
}

function tarEndOf(b, parsed) {
  const last = parsed.headers[parsed.headers.length - 1];
  if (!last) return 0;
  return Math.min(b.length, last.dataOff + last.size + ((512 - (last.size % 512)) % 512));
}

export function mutateTar(rng, b, ctx = {}) {
  const parsed = tar.parseTar(b);
  const heads = parsed.headers;
  const op = rng.weighted([
    [6, 'field'], [3, 'pax'], [1, 'rawpax'], [2, 'gnulong'], [2, 'through'], [2, 'dangling'], [2, 'sparse'], [1, 'deep'], [1, 'wide'],
    [1, 'bigname'], [2, 'generic'], [1, 'truncate'], [1, 'noend'],
  ]);
  if (op === 'field' && heads.length) return tarHeaderField(rng, b, heads);
  if (op === 'pax') {
    const recs = paxHostile(rng);
    return insertBefore(rng, b, heads, tar.pax(recs), `pax ${recs.map(([k]) => k).slice(0, 3).join(',')}`);
  }
  if (op === 'rawpax') return insertBefore(rng, b, heads, rawPax(rng), 'malformed pax');
  if (op === 'gnulong') {
    const t = rng.pick(['L', 'K']);
    const v = rng.pick([...HOSTILE_TAR_NAMES, 'l'.repeat(70000), 'q/'.repeat(3000)]);
    return insertBefore(rng, b, heads, tar.gnuLong(t, v), `gnu ${t} ${JSON.stringify(v.slice(0, 30))}`);
  }
  if (op === 'through') {
    const kind = rng.pick(['symlink', 'file', 'hardlink']);
    const target = rng.pick(['/tmp', '../../..', '/proc/self/cwd', '.']);
    const first = kind === 'symlink' ? { name: 'evil', type: '2', linkname: target } : kind === 'file' ? { name: 'evil', data: 'x' } : { name: 'evil', type: '1', linkname: rng.pick(['../../x', '/etc/passwd', 'evil']) };
    const second = rng.pick([{ name: 'evil/pwn', data: 'pwned' }, { name: 'evil/sub/', type: '5' }, { name: 'evil/l', type: '2', linkname: '/' }, { name: 'evil', data: 'again' }]);
    const at = tarEndOf(b, parsed);
    return { b: Buffer.concat([b.subarray(0, at), tar.entry(first), tar.entry(second), tar.END]), what: `${kind} "evil" then ${JSON.stringify(second.name)}` };
  }
  if (op === 'dangling') {
    const at = tarEndOf(b, parsed);
    const tail = rng.pick([tar.pax([['path', 'dangling']]), tar.gnuLong('L', 'dangling'), tar.gnuLong('K', 'x'), tar.header({ name: 'x', size: 100 })]);
    return { b: Buffer.concat([b.subarray(0, at), tail, rng.chance(0.5) ? tar.END : Buffer.alloc(0)]), what: 'dangling header at the end' };
  }
  if (op === 'sparse') {
    const real = rng.pick([2 ** 20, 2 ** 40, 2 ** 44, 2 ** 53 - 1]);
    const regions = rng.pick([[[0, 512]], [[real - 512, 512]], [[0, 512], [2 ** 30, 512]], [[0, 512], [0, 512]], [[2 ** 40, 512]],
      Array.from({ length: 50 }, (_, i) => [i * 2 ** 30, 512])]);
    const chunk = rng.chance(0.4) ? tar.gnuSparse('sp', real, regions) : tar.paxSparse(rng.pick(['0.0', '0.1', '1.0']), 'sp', real, regions);
    const at = tarEndOf(b, parsed);
    return { b: Buffer.concat([b.subarray(0, at), chunk, tar.END]), what: `sparse realsize ${real} regions ${regions.length}` };
  }
  if (op === 'deep') {
    const depth = rng.pick([1000, 5000, 20000]);
    const name = `${'d/'.repeat(depth)}f`;
    const at = tarEndOf(b, parsed);
    return { b: Buffer.concat([b.subarray(0, at), tar.entry({ name, data: 'deep', long: rng.pick(['pax', 'gnu']) }), tar.END]), what: `path of depth ${depth}` };
  }
  if (op === 'wide') {
    const n = rng.pick([5000, 20000]);
    const es = [];
    for (let i = 0; i < n; i++) es.push(tar.header({ name: `w/${i}`, size: 0 }));
    const at = tarEndOf(b, parsed);
    return { b: Buffer.concat([b.subarray(0, at), ...es, tar.END]), what: `${n} entries in one directory` };
  }
  if (op === 'bigname') {
    const name = rng.pick([`${'n'.repeat(256)}`, `dir/${'m'.repeat(300)}`, `${'x'.repeat(70000)}`]);
    const at = tarEndOf(b, parsed);
    return { b: Buffer.concat([b.subarray(0, at), tar.entry({ name, data: 'x', long: rng.pick(['pax', 'gnu']) }), tar.END]), what: `name of ${name.length} bytes` };
  }
  if (op === 'truncate') {
    const h = heads.length ? rng.pick(heads) : { off: 0, dataOff: 0 };
    const n = rng.pick([h.off, h.off + 100, h.dataOff, h.dataOff + 1]);
    return { b: Buffer.from(b.subarray(0, Math.min(n, b.length))), what: `truncate at ${n}` };
  }
  if (op === 'noend') return { b: Buffer.from(b.subarray(0, tarEndOf(b, parsed))), what: 'no end blocks' };
  return generic(rng, b, ctx.other);
}

// ---------------------------------------------------------------------------------------------
// gzip

export function mutateGzip(rng, gz, plain) {
  const op = rng.pick(['flags', 'extra', 'trailer', 'truncate', 'concat', 'garbage', 'inner', 'inner', 'inner', 'bitflip']);
  const out = Buffer.from(gz);
  if (op === 'inner' && plain) {
    const m = mutateTar(rng, plain);
    return { b: zlib.gzipSync(m.b, { level: 1 }), what: `gzip of (${m.what})` };
  }
  if (op === 'flags') {
    out[3] = rng.pick([0x04, 0x08, 0x10, 0x02, 0xe0, 0xff]);
    return { b: out, what: `gzip FLG=0x${out[3].toString(16)}` };
  }
  if (op === 'extra') {
    const hdr = Buffer.from(out.subarray(0, 10));
    hdr[3] |= 0x04;
    const xlen = rng.pick([0, 1, 0xffff]);
    const x = Buffer.alloc(2);
    x.writeUInt16LE(xlen);
    return { b: Buffer.concat([hdr, x, Buffer.alloc(Math.min(xlen, 16)), out.subarray(10)]), what: `gzip FEXTRA XLEN=${xlen}` };
  }
  if (op === 'trailer') {
    const at = out.length - rng.pick([4, 8]);
    out.writeUInt32LE(rng.pick([0, 0xffffffff, rng.u32()]), at);
    return { b: out, what: `gzip trailer @${at}` };
  }
  if (op === 'truncate') return truncate(rng, out);
  if (op === 'concat') return { b: Buffer.concat([out, rng.chance(0.5) ? out : zlib.gzipSync(Buffer.alloc(rng.pick([0, 1024, 1 << 20])))]), what: 'gzip members concatenated' };
  if (op === 'garbage') return { b: Buffer.concat([out, rng.bytes(rng.range(1, 64))]), what: 'garbage after gzip' };
  return bitflip(rng, out);
}
