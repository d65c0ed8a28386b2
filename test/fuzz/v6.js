// RAFS v6 bootstraps taken apart by the spec's offsets (rafs-v6.md), independent of the code
// under test, and the structural mutations that push their fields to the limits: inode and
// dirent fields, names, blob ids, chunk indexes, tables, deep and wide trees, and one big chunk
// array shared by thousands of entries.
const SB = 1024;
const EXT = 1152;
const SLOTS = 1408;

export const isV6 = (b) => b.length >= SB + 128 && b.readUInt32LE(SB) === 0xe0f5e1e2;

const u64 = (b, o) => (o + 8 <= b.length ? b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 2 ** 32 : 0);
function put(b, off, width, v) {
  if (off < 0 || off + width > b.length) return;
  if (width === 1) b[off] = Number(BigInt.asUintN(8, BigInt(v)));
  else if (width === 2) b.writeUInt16LE(Number(BigInt.asUintN(16, BigInt(v))), off);
  else if (width === 4) b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(v))), off);
  else b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), off);
}
export { put };

/** Every structure of the bootstrap with its offset; walks the tree with a stack, tolerates damage. */
export function layout(b) {
  const L = { fields: [], inodes: [], dirs: [], chunkIdx: [], blobs: [], slots: [], chunks: [], ok: false };
  if (!isV6(b)) return L;
  const f = (off, width, name) => L.fields.push({ off, width, name });
  L.blkszbits = b[SB + 12];
  L.B = 2 ** L.blkszbits;
  L.metaBase = b.readUInt32LE(SB + 40) * L.B;
  L.rootNid = b.readUInt16LE(SB + 14);
  L.extraDevices = b.readUInt16LE(SB + 86);
  L.chunkSize = b.readUInt32LE(EXT + 20);
  [[12, 1, 'sb.blkszbits'], [14, 2, 'sb.root_nid'], [16, 8, 'sb.inos'], [36, 4, 'sb.blocks'], [40, 4, 'sb.meta_blkaddr'],
    [44, 4, 'sb.xattr_blkaddr'], [80, 4, 'sb.feature_incompat'], [86, 2, 'sb.extra_devices'], [88, 2, 'sb.devt_slotoff'], [8, 4, 'sb.feature_compat'],
  ].forEach(([o, w, n]) => f(SB + o, w, n));
  [[0, 8, 'ext.flags'], [8, 8, 'ext.blob_table_offset'], [16, 4, 'ext.blob_table_size'], [20, 4, 'ext.chunk_size'],
    [24, 8, 'ext.chunk_table_offset'], [32, 8, 'ext.chunk_table_size'], [40, 8, 'ext.prefetch_table_offset'], [48, 4, 'ext.prefetch_table_size'],
  ].forEach(([o, w, n]) => f(EXT + o, w, n));
  const btOff = u64(b, EXT + 8);
  const btSize = b.readUInt32LE(EXT + 16);
  for (let i = 0; i < Math.min(btSize / 256, 256); i++) {
    const o = btOff + i * 256;
    if (o + 256 > b.length) break;
    L.blobs.push(o);
    [[64, 4, 'blob_index'], [68, 4, 'chunk_size'], [72, 4, 'chunk_count'], [76, 4, 'compression_algo'], [80, 4, 'digest_algo'],
      [84, 4, 'features'], [88, 8, 'compressed_size'], [96, 8, 'uncompressed_size'], [104, 4, 'blob_toc_size'], [108, 4, 'ci_compressor'],
      [112, 8, 'ci_offset'], [120, 8, 'ci_compressed_size'], [128, 8, 'ci_uncompressed_size'], [200, 8, 'blob_meta_size'], [216, 4, 'cipher_algo'],
    ].forEach(([x, w, n]) => f(o + x, w, `blob[${i}].${n}`));
  }
  for (let i = 0; i < Math.min(L.extraDevices, 256); i++) {
    const o = SLOTS + i * 128;
    if (o + 128 > b.length) break;
    L.slots.push(o);
    f(o + 64, 4, `slot[${i}].blocks`);
    f(o + 68, 4, `slot[${i}].mapped_blkaddr`);
  }
  const ctOff = u64(b, EXT + 24);
  const ctSize = u64(b, EXT + 32);
  for (let o = ctOff, k = 0; o + 80 <= Math.min(b.length, ctOff + ctSize) && k < 4096; o += 80, k++) {
    L.chunks.push(o);
    [[32, 4, 'blob_index'], [36, 4, 'flags'], [40, 4, 'compressed_size'], [44, 4, 'uncompressed_size'], [48, 8, 'compressed_offset'],
      [56, 8, 'uncompressed_offset'], [64, 8, 'file_offset'], [72, 4, 'index']].forEach(([x, w, n]) => f(o + x, w, `chunk_info[${k}].${n}`));
  }
  const pOff = u64(b, EXT + 40);
  const pSize = b.readUInt32LE(EXT + 48);
  for (let o = pOff; o + 4 <= Math.min(b.length, pOff + pSize); o += 4) f(o, 4, 'prefetch');

  // The tree, by a stack; each inode once.
  const seen = new Set();
  const stack = [L.rootNid];
  while (stack.length > 0 && L.inodes.length < 20000) {
    const nid = stack.pop();
    if (seen.has(nid)) continue;
    seen.add(nid);
    const off = L.metaBase + nid * 32;
    if (off < 0 || off + 32 > b.length) continue;
    const fmt = b.readUInt16LE(off);
    const ext = (fmt & 1) === 1;
    const isz = ext ? 64 : 32;
    if (off + isz > b.length) continue;
    const lay = (fmt >> 1) & 7;
    const icount = b.readUInt16LE(off + 2);
    const mode = b.readUInt16LE(off + 4);
    const size = ext ? u64(b, off + 8) : b.readUInt32LE(off + 8);
    const iu = b.readUInt32LE(off + 16);
    const xsize = icount === 0 ? 0 : 12 + 4 * (icount - 1);
    const ino = { nid, off, ext, isz, layout: lay, icount, mode, size, iu, xoff: off + isz, xsize };
    L.inodes.push(ino);
    f(off, 2, `inode@${nid}.i_format`);
    f(off + 2, 2, `inode@${nid}.i_xattr_icount`);
    f(off + 4, 2, `inode@${nid}.i_mode`);
    f(off + 8, ext ? 8 : 4, `inode@${nid}.i_size`);
    f(off + 16, 4, `inode@${nid}.i_u`);
    f(off + 20, 4, `inode@${nid}.i_ino`);
    if (ext) {
      f(off + 24, 4, `inode@${nid}.i_uid`);
      f(off + 32, 8, `inode@${nid}.i_mtime`);
      f(off + 40, 4, `inode@${nid}.i_mtime_nsec`);
      f(off + 44, 4, `inode@${nid}.i_nlink`);
    } else f(off + 6, 2, `inode@${nid}.i_nlink`);
    if (xsize > 0 && ino.xoff + xsize <= b.length) {
      f(ino.xoff + 4, 1, `inode@${nid}.h_shared_count`);
      for (let p = ino.xoff + 12; p + 4 <= ino.xoff + xsize; ) {
        f(p, 1, `inode@${nid}.e_name_len`);
        f(p + 1, 1, `inode@${nid}.e_name_index`);
        f(p + 2, 2, `inode@${nid}.e_value_size`);
        p += (4 + b[p] + b.readUInt16LE(p + 2) + 3) & ~3;
      }
    }
    const type = mode & 0o170000;
    if (type === 0o100000 && lay === 4) {
      const cs = 2 ** ((iu & 0x1f) + L.blkszbits);
      const count = Math.min(Math.ceil(size / cs), 100000);
      const base = (ino.xoff + xsize + 7) & ~7;
      for (let k = 0; k < count && base + k * 8 + 8 <= b.length; k++) {
        const o = base + k * 8;
        L.chunkIdx.push({ nid, off: o, k });
        f(o, 2, `inode@${nid}.chunk[${k}].ci_index_lo`);
        f(o + 2, 1, `inode@${nid}.chunk[${k}].device_id`);
        f(o + 3, 1, `inode@${nid}.chunk[${k}].ci_index_hi`);
        f(o + 4, 4, `inode@${nid}.chunk[${k}].blkaddr`);
      }
    }
    if (type === 0o040000 && (lay === 0 || lay === 2) && size < 64 * 1024 * 1024) {
      const B = L.B;
      const full = lay === 2 ? Math.floor(size / B) * B : size;
      const blocks = [];
      for (let s = 0; s < full; s += B) blocks.push({ off: iu * B + s, len: Math.min(B, full - s), inline: false });
      if (lay === 2 && size > full) blocks.push({ off: ino.xoff + xsize, len: size - full, inline: true });
      const dir = { nid, ino, blocks: [] };
      for (const blk of blocks) {
        if (blk.off + blk.len > b.length || blk.len < 12) continue;
        const entries = decodeBlock(b, blk.off, blk.len);
        if (!entries) continue;
        dir.blocks.push({ ...blk, entries });
        entries.forEach((e, i) => {
          f(blk.off + i * 12, 8, `dirent@${nid}.nid`);
          f(blk.off + i * 12 + 8, 2, `dirent@${nid}.nameoff`);
          f(blk.off + i * 12 + 10, 1, `dirent@${nid}.file_type`);
          if (!isDot(e.name)) stack.push(e.nid);
        });
      }
      L.dirs.push(dir);
    }
  }
  L.ok = L.inodes.length > 0;
  return L;
}

const isDot = (n) => n.length <= 2 && n.every((c) => c === 0x2e);

export function decodeBlock(b, off, len) {
  const first = b.readUInt16LE(off + 8);
  if (first < 12 || first % 12 !== 0 || first > len) return undefined;
  const n = first / 12;
  const out = [];
  for (let i = 0; i < n; i++) {
    const d = off + i * 12;
    const start = b.readUInt16LE(d + 8);
    let end = i + 1 < n ? b.readUInt16LE(d + 12 + 8) : len;
    if (i + 1 === n) {
      const nul = b.subarray(off + start, off + end).indexOf(0);
      if (nul >= 0) end = start + nul;
    }
    if (end < start || end > len) return undefined;
    out.push({ nid: u64(b, d), file_type: b[d + 10], name: Buffer.from(b.subarray(off + start, off + end)) });
  }
  return out;
}

export function encodeBlock(entries) {
  const used = entries.reduce((n, e) => n + 12 + e.name.length, 0);
  const out = Buffer.alloc(used);
  let nameoff = entries.length * 12;
  entries.forEach((e, i) => {
    out.writeBigUInt64LE(BigInt.asUintN(64, BigInt(e.nid)), i * 12);
    out.writeUInt16LE(nameoff & 0xffff, i * 12 + 8);
    out[i * 12 + 10] = e.file_type;
    e.name.copy(out, nameoff);
    nameoff += e.name.length;
  });
  return out;
}

/**
 * Rewrites one directory block with `entries` (sorted by name unless keepOrder). Fits it where
 * the block was: a full block up to B bytes; the last or inline block up to the next inode, with
 * i_size adjusted. Returns false when it cannot fit.
 */
export function rewriteBlock(b, L, dir, blk, entries, keepOrder = false) {
  const sorted = keepOrder ? entries : [...entries].sort((x, y) => Buffer.compare(x.name, y.name));
  const enc = encodeBlock(sorted);
  const isLast = blk === dir.blocks[dir.blocks.length - 1];
  let room = L.B;
  if (blk.inline) {
    const nextInode = Math.min(...L.inodes.map((i) => i.off).filter((o) => o > blk.off), b.length);
    room = Math.min(nextInode, Math.floor(blk.off / L.B) * L.B + L.B) - blk.off;
  }
  if (enc.length > room || (!isLast && enc.length > L.B)) return false;
  b.fill(0, blk.off, blk.off + Math.max(blk.len, isLast ? 0 : L.B));
  enc.copy(b, blk.off);
  if (isLast && enc.length !== blk.len) {
    const ino = dir.ino;
    const size = ino.size - blk.len + enc.length;
    if (ino.ext) put(b, ino.off + 8, 8, size);
    else put(b, ino.off + 8, 4, size);
  }
  return true;
}

/** Grows the bootstrap by `n` bytes (rounded to 4 KiB) and returns the new buffer and where the area starts. */
export function grow(b, n) {
  const start = Math.ceil(b.length / 4096) * 4096;
  const len = Math.ceil((start + n) / 4096) * 4096;
  const out = Buffer.alloc(len);
  b.copy(out);
  put(out, SB + 36, 4, len / 4096);
  return { b: out, start };
}

export function extInode({ layout: lay, mode, size, iu, nlink = 1, icount = 0, ino = 1 }) {
  const x = Buffer.alloc(64);
  x.writeUInt16LE(1 | (lay << 1), 0);
  x.writeUInt16LE(icount, 2);
  x.writeUInt16LE(mode, 4);
  x.writeBigUInt64LE(BigInt(size), 8);
  x.writeUInt32LE(iu >>> 0, 16);
  x.writeUInt32LE(ino >>> 0, 20);
  x.writeUInt32LE(nlink >>> 0, 44);
  return x;
}

export const HOSTILE_NAMES = [
  '..', '.', '/', '../x', '../../x', '../../../../../../tmp/nydus-fuzz-escape', '/abs', '/etc/nydus-fuzz', 'a/../../x',
  'x\0y', '\0', 'lnk/f', 'lnk/../../x', 'dir/../..', './x', 'a//b', 'a/', '/', '..\0', 'lnk',
  'A'.repeat(256), 'B'.repeat(300), 'C'.repeat(255), '\n', 'a\nb', '-rf', '.wh..wh..opq', '.wh.x', '', 'é', '\u00ff\u00fe',
];

export const HOSTILE_BLOB_IDS = (canaryRel) => [
  canaryRel, '../../secret', '/proc/self/cwd/secret', '/etc/passwd', '..', '.', '', 'a/b', '../in/boot', './x',
  '/', 'x'.repeat(64), `${'0'.repeat(63)}/`, 'secret\0hidden', '\n', '/dev/zero', '/dev/urandom', '/proc/self/mem', 'blobs',
];
