// Tars built in code (ustar, GNU long names, PAX records and xattrs, GNU and PAX sparse) and a
// tolerant tar reader that returns every header with its offset, for mutating input tars and
// judging unpack's output.
const BLOCK = 512;

export const T = {
  FILE: '0', HARDLINK: '1', SYMLINK: '2', CHAR: '3', BLOCK: '4', DIR: '5', FIFO: '6',
  PAX: 'x', GLOBAL: 'g', GNU_LONGNAME: 'L', GNU_LONGLINK: 'K', GNU_SPARSE: 'S',
};

const buf = (v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v ?? ''), 'utf8'));
const pad = (n) => (BLOCK - (n % BLOCK)) % BLOCK;

function octal(h, off, len, value) {
  const s = Math.max(0, Math.floor(value)).toString(8);
  if (s.length > len - 1) {
    // GNU base-256 for what octal cannot hold.
    h.fill(0, off, off + len);
    h.writeBigUInt64BE(BigInt(Math.floor(value)), off + len - 8);
    h[off] |= 0x80;
    return;
  }
  h.write(s.padStart(len - 1, '0'), off, 'latin1');
  h[off + len - 1] = 0;
}

/** Writes the checksum of a 512-byte header in place. */
export function fixChecksum(h, off = 0) {
  h.fill(0x20, off + 148, off + 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[off + i];
  h.write(sum.toString(8).padStart(6, '0'), off + 148, 'latin1');
  h[off + 154] = 0;
  h[off + 155] = 0x20;
}

/** One ustar header. Fields longer than their slot are cut (callers add L/K or PAX records). */
export function header(f) {
  const h = Buffer.alloc(BLOCK);
  buf(f.name).copy(h, 0, 0, 100);
  octal(h, 100, 8, f.mode ?? 0o644);
  octal(h, 108, 8, f.uid ?? 0);
  octal(h, 116, 8, f.gid ?? 0);
  octal(h, 124, 12, f.size ?? 0);
  octal(h, 136, 12, f.mtime ?? 1_600_000_000);
  h.write(f.type ?? T.FILE, 156, 'latin1');
  buf(f.linkname).copy(h, 157, 0, 100);
  if (f.gnu) h.write('ustar  \0', 257, 'latin1');
  else h.write('ustar\x0000', 257, 'latin1');
  buf(f.uname ?? 'root').copy(h, 265, 0, 32);
  buf(f.gname ?? 'root').copy(h, 297, 0, 32);
  octal(h, 329, 8, f.devmajor ?? 0);
  octal(h, 337, 8, f.devminor ?? 0);
  if (f.prefix) buf(f.prefix).copy(h, 345, 0, 155);
  if (f.extra) f.extra(h);
  fixChecksum(h);
  return h;
}

export function paxRecord(key, value) {
  const kv = Buffer.concat([Buffer.from(` ${key}=`), buf(value), Buffer.from('\n')]);
  let len = kv.length + 1;
  while (String(len).length + kv.length !== len) len = String(len).length + kv.length;
  return Buffer.concat([Buffer.from(String(len)), kv]);
}

const withData = (h, data) => Buffer.concat([h, data, Buffer.alloc(pad(data.length))]);

/** A PAX extended header ('x', or 'g' for global) holding records [[key, value], ...]. */
export function pax(records, type = T.PAX, name = 'PaxHeaders/x') {
  const data = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  return withData(header({ name, type, size: data.length, mode: 0o644 }), data);
}

export function gnuLong(type, value) {
  const data = Buffer.concat([buf(value), Buffer.alloc(1)]);
  return withData(header({ name: '././@LongLink', type, size: data.length, gnu: true }), data);
}

/**
 * One entry: {name, type, data, linkname, mode, uid, gid, mtime, xattrs: [[name, value]],
 * long: 'gnu' | 'pax' for names that need it, pax: extra records}.
 */
export function entry(e) {
  const name = buf(e.name);
  const link = e.linkname !== undefined ? buf(e.linkname) : undefined;
  const data = e.data !== undefined ? buf(e.data) : Buffer.alloc(0);
  const parts = [];
  const records = [...(e.pax ?? [])];
  for (const [k, v] of e.xattrs ?? []) records.push([`SCHILY.xattr.${k}`, v]);
  const long = e.long ?? 'pax';
  if (name.length > 100 && long === 'gnu') parts.push(gnuLong(T.GNU_LONGNAME, name));
  if (link && link.length > 100 && long === 'gnu') parts.push(gnuLong(T.GNU_LONGLINK, link));
  if (name.length > 100 && long === 'pax') records.push(['path', name]);
  if (link && link.length > 100 && long === 'pax') records.push(['linkpath', link]);
  if (records.length > 0) parts.push(pax(records));
  const type = e.type ?? T.FILE;
  const size = e.size ?? (type === T.FILE || type === '\0' || type === '7' ? data.length : 0);
  parts.push(withData(header({ ...e, name, linkname: link, type, size, gnu: long === 'gnu' && (name.length > 100 || (link?.length ?? 0) > 100) }), size > 0 || data.length > 0 ? data : Buffer.alloc(0)));
  return Buffer.concat(parts);
}

export const END = Buffer.alloc(BLOCK * 2);

export function tar(entries, end = END) {
  return Buffer.concat([...entries.map((e) => (Buffer.isBuffer(e) ? e : entry(e))), end]);
}

/**
 * Old GNU sparse ('S'): map entries [[offset, numbytes], ...] (up to 4 in the header, the rest
 * in extension blocks), realsize, then the data of every region back to back.
 */
export function gnuSparse(name, realsize, regions, fill = 0x61) {
  const first = regions.slice(0, 4);
  const rest = regions.slice(4);
  const stored = regions.reduce((n, [, len]) => n + len, 0);
  const h = header({
    name, type: T.GNU_SPARSE, size: stored, gnu: true,
    extra: (b) => {
      first.forEach(([o, n], i) => {
        octal(b, 386 + i * 24, 12, o);
        octal(b, 386 + i * 24 + 12, 12, n);
      });
      b[482] = rest.length > 0 ? 1 : 0;
      octal(b, 483, 12, realsize);
    },
  });
  const ext = [];
  for (let i = 0; i < rest.length; i += 21) {
    const x = Buffer.alloc(BLOCK);
    rest.slice(i, i + 21).forEach(([o, n], k) => {
      octal(x, k * 24, 12, o);
      octal(x, k * 24 + 12, 12, n);
    });
    x[504] = i + 21 < rest.length ? 1 : 0;
    ext.push(x);
  }
  const data = Buffer.alloc(stored, fill);
  return Buffer.concat([h, ...ext, data, Buffer.alloc(pad(stored))]);
}

/** PAX sparse: version '0.0' (repeated offset/numbytes), '0.1' (map), '1.0' (map in the data). */
export function paxSparse(version, name, realsize, regions, fill = 0x62) {
  const stored = regions.reduce((n, [, len]) => n + len, 0);
  const records = [];
  let prefix = Buffer.alloc(0);
  let hdrName = name;
  if (version === '0.0') {
    records.push(['GNU.sparse.size', realsize], ['GNU.sparse.numblocks', regions.length]);
    for (const [o, n] of regions) records.push(['GNU.sparse.offset', o], ['GNU.sparse.numbytes', n]);
  } else if (version === '0.1') {
    records.push(['GNU.sparse.size', realsize], ['GNU.sparse.numblocks', regions.length], ['GNU.sparse.map', regions.flat().join(',')], ['GNU.sparse.name', name]);
    hdrName = `GNUSparseFile.0/${name}`;
  } else {
    records.push(['GNU.sparse.major', 1], ['GNU.sparse.minor', 0], ['GNU.sparse.name', name], ['GNU.sparse.realsize', realsize]);
    hdrName = `GNUSparseFile.0/${name}`;
    const map = `${regions.length}\n${regions.map(([o, n]) => `${o}\n${n}\n`).join('')}`;
    prefix = Buffer.concat([Buffer.from(map), Buffer.alloc(pad(map.length))]);
  }
  const data = Buffer.concat([prefix, Buffer.alloc(stored, fill)]);
  return Buffer.concat([pax(records), withData(header({ name: hdrName, type: T.FILE, size: data.length }), data)]);
}

function parseNum(b) {
  if (b[0] & 0x80) {
    let v = 0n;
    for (let i = 1; i < b.length; i++) v = (v << 8n) | BigInt(b[i]);
    v |= BigInt(b[0] & 0x7f) << BigInt(8 * (b.length - 1));
    return Number(v);
  }
  const s = b.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ ]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

const cstr = (b) => {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
};

function parsePax(data, into) {
  let p = 0;
  while (p < data.length) {
    const sp = data.indexOf(0x20, p);
    if (sp < 0) return false;
    const len = Number(data.subarray(p, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || p + len > data.length) return false;
    const rec = data.subarray(sp + 1, p + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) return false;
    into.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    p += len;
  }
  return true;
}

/**
 * Every header of a tar: [{off, dataOff, size, type, name, linkname}] with names resolved from
 * PAX and GNU long-name records. `error` says why reading stopped early, if it did.
 */
export function parseTar(b) {
  const members = [];
  const headers = [];
  let off = 0;
  let global = new Map();
  let local = new Map();
  let longName;
  let longLink;
  let error;
  let ended = false;
  while (off + BLOCK <= b.length) {
    const h = b.subarray(off, off + BLOCK);
    if (h.every((x) => x === 0)) {
      ended = true;
      break;
    }
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    const want = parseNum(h.subarray(148, 156));
    if (want !== sum) {
      error = `bad checksum at ${off}`;
      break;
    }
    const type = String.fromCharCode(h[156] || 0x30);
    const size = parseNum(h.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0) {
      error = `bad size at ${off}`;
      break;
    }
    const dataOff = off + BLOCK;
    headers.push({ off, dataOff, size, type });
    const data = b.subarray(dataOff, dataOff + size);
    if (data.length < size && type !== T.GNU_SPARSE) {
      error = `truncated data at ${off}`;
    }
    let next = dataOff + size + pad(size);
    if (type === T.GNU_SPARSE && h[482] === 1) {
      // extension blocks follow the header, before the data
      let x = dataOff;
      while (x + BLOCK <= b.length && b[x + 504] === 1) x += BLOCK;
      next = x + BLOCK + size + pad(size);
      headers[headers.length - 1].dataOff = x + BLOCK;
    }
    if (type === T.PAX) {
      if (!parsePax(data, local)) error = `bad PAX record at ${off}`;
    } else if (type === T.GLOBAL) {
      const g = new Map(global);
      if (!parsePax(data, g)) error = `bad PAX record at ${off}`;
      global = g;
    } else if (type === T.GNU_LONGNAME) {
      longName = Buffer.from(cstr(data));
    } else if (type === T.GNU_LONGLINK) {
      longLink = Buffer.from(cstr(data));
    } else {
      const magic = h.subarray(257, 263).toString('latin1');
      let name = Buffer.from(cstr(h.subarray(0, 100)));
      if (magic === 'ustar\0') {
        const prefix = cstr(h.subarray(345, 500));
        if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
      }
      const attrs = new Map([...global, ...local]);
      if (attrs.has('path')) name = attrs.get('path');
      if (longName) name = longName;
      let linkname = Buffer.from(cstr(h.subarray(157, 257)));
      if (attrs.has('linkpath')) linkname = attrs.get('linkpath');
      if (longLink) linkname = longLink;
      members.push({ off, type, name, linkname, size, attrs });
      local = new Map();
      longName = undefined;
      longLink = undefined;
    }
    if (error) break;
    off = next;
  }
  return { members, headers, error, ended };
}
