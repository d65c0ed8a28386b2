// A real eStargz producer, written from the eStargz spec (stargz-snapshotter docs/estargz.md)
// and its Go writer (estargz.go, gzip.go), to feed the stargz conversions a layer we did not make
// with our own reader in mind: the tar's bytes are kept, but cut into gzip members so that every
// regular file's data (each chunk of a large one) starts a member of its own; the TOC
// (stargz.index.json) is the last tar entry, in a member of its own, and the 51-byte footer
// (an empty gzip member whose extra field holds the TOC offset) ends the blob.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface EstargzOptions {
  /** Bytes of file data per chunk (the Go writer's default is 4 MiB). */
  chunkSize?: number;
  /** End with the legacy 47-byte stargz footer instead of the eStargz one. */
  legacyFooter?: boolean;
}

export interface Estargz {
  blob: Buffer;
  /** The TOC as written into the blob. */
  toc: { version: 1; entries: Array<Record<string, unknown>> };
  tocJson: Buffer;
  /** Offset of the TOC's gzip member. */
  tocOffset: number;
  /** sha256 of the blob, hex (the OCI layer digest). */
  digest: string;
}

const BLOCK = 512;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const cstr = (b: Buffer) => b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)).toString('latin1');
const octal = (b: Buffer) => parseInt(cstr(b).trim() || '0', 8);

/** PAX records: key -> raw value bytes. */
function paxRecords(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at < data.length) {
    const sp = data.indexOf(0x20, at);
    const len = parseInt(data.subarray(at, sp).toString('latin1'), 10);
    const rec = data.subarray(sp + 1, at + len - 1);
    const eq = rec.indexOf(0x3d);
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    at += len;
  }
  return out;
}

/** The tar entry header as a tar.Header would show it, after PAX and GNU long-name extensions. */
interface Entry {
  name: string;
  linkName: string;
  typeflag: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  devMajor: number;
  devMinor: number;
  xattrs: Map<string, Buffer>;
}

/** Builds an eStargz blob from a tar (ustar, PAX or GNU), as `ctr-remote image convert --estargz` would. */
export function stargzify(tar: Buffer, opts: EstargzOptions = {}): Estargz {
  const chunkSize = opts.chunkSize ?? 4 << 20;
  const members: Buffer[] = [];
  let written = 0;
  let current: Buffer[] | undefined;
  const open = () => (current ??= []);
  const close = () => {
    if (!current) return;
    const m = gzipSync(Buffer.concat(current), { level: 9 });
    members.push(m);
    written += m.length;
    current = undefined;
  };
  const write = (b: Buffer) => open().push(b);

  const entries: Array<Record<string, unknown>> = [];
  let raw: Buffer[] = [];
  let pax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let pos = 0;
  while (pos + BLOCK <= tar.length) {
    const h = tar.subarray(pos, pos + BLOCK);
    if (h.every((x) => x === 0)) break;
    const typeflag = String.fromCharCode(h[156]!);
    const hsize = octal(h.subarray(124, 136));
    const padded = Math.ceil(hsize / BLOCK) * BLOCK;
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      const data = tar.subarray(pos + BLOCK, pos + BLOCK + hsize);
      raw.push(tar.subarray(pos, pos + BLOCK + padded));
      if (typeflag === 'x') pax = paxRecords(data);
      if (typeflag === 'L') longName = cstr(data);
      if (typeflag === 'K') longLink = cstr(data);
      pos += BLOCK + padded;
      continue;
    }
    const prefix = cstr(h.subarray(345, 500));
    const e: Entry = {
      name: pax.get('path')?.toString('utf8') ?? longName ?? (prefix ? `${prefix}/${cstr(h.subarray(0, 100))}` : cstr(h.subarray(0, 100))),
      linkName: pax.get('linkpath')?.toString('utf8') ?? longLink ?? cstr(h.subarray(157, 257)),
      typeflag,
      size: pax.has('size') ? Number(pax.get('size')!.toString()) : hsize,
      mode: octal(h.subarray(100, 108)),
      uid: pax.has('uid') ? Number(pax.get('uid')!.toString()) : octal(h.subarray(108, 116)),
      gid: pax.has('gid') ? Number(pax.get('gid')!.toString()) : octal(h.subarray(116, 124)),
      uname: pax.get('uname')?.toString('utf8') ?? cstr(h.subarray(265, 297)),
      gname: pax.get('gname')?.toString('utf8') ?? cstr(h.subarray(297, 329)),
      mtime: pax.has('mtime') ? Math.floor(Number(pax.get('mtime')!.toString())) : octal(h.subarray(136, 148)),
      devMajor: octal(h.subarray(329, 337)),
      devMinor: octal(h.subarray(337, 345)),
      xattrs: new Map([...pax].filter(([k]) => k.startsWith('SCHILY.xattr.')).map(([k, v]) => [k.slice('SCHILY.xattr.'.length), v])),
    };
    raw.push(h);
    const dataAt = pos + BLOCK;
    pos += BLOCK + Math.ceil(e.size / BLOCK) * BLOCK;
    pax = new Map();
    longName = longLink = undefined;

    const type = ({ '0': 'reg', '\0': 'reg', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' } as Record<string, string>)[e.typeflag];
    if (!type) throw new Error(`stargzify: unsupported tar entry type ${JSON.stringify(e.typeflag)}`);
    const ent: Record<string, unknown> = {
      name: e.name, type, modtime: new Date(e.mtime * 1000).toISOString().replace(/\.000Z$/, 'Z'), mode: e.mode,
      ...(e.uid ? { uid: e.uid } : {}), ...(e.gid ? { gid: e.gid } : {}),
      ...(e.uname ? { userName: e.uname } : {}), ...(e.gname ? { groupName: e.gname } : {}),
      ...(type === 'symlink' || type === 'hardlink' ? { linkName: e.linkName } : {}),
      ...(type === 'char' || type === 'block' ? { devMajor: e.devMajor, devMinor: e.devMinor } : {}),
      ...(e.xattrs.size > 0 ? { xattrs: Object.fromEntries([...e.xattrs].map(([k, v]) => [k, v.toString('base64')])) } : {}),
    };
    // The entry's headers go into the member that is open (a new one after a file's data).
    write(Buffer.concat(raw));
    raw = [];
    if (type === 'reg') {
      ent.size = e.size;
      const data = tar.subarray(dataAt, dataAt + e.size);
      ent.digest = sha256(data);
      let done = 0;
      let cur = ent;
      while (done < e.size) {
        const n = Math.min(chunkSize, e.size - done);
        if (n === chunkSize) cur.chunkSize = n;
        // Each chunk of data starts a gzip member of its own.
        close();
        cur.offset = written;
        if (done > 0) cur.chunkOffset = done;
        const piece = data.subarray(done, done + n);
        cur.chunkDigest = sha256(piece);
        write(piece);
        entries.push(cur);
        done += n;
        cur = { name: e.name, type: 'chunk' };
      }
      if (e.size === 0) entries.push(ent);
      write(Buffer.alloc(Math.ceil(e.size / BLOCK) * BLOCK - e.size));
    } else {
      entries.push(ent);
    }
  }
  close();

  const toc = { version: 1 as const, entries };
  const tocJson = Buffer.from(JSON.stringify(toc, null, '\t'));
  const tocOffset = written;
  members.push(gzipSync(Buffer.concat([tocTarHeader(tocJson.length), tocJson, Buffer.alloc(Math.ceil(tocJson.length / BLOCK) * BLOCK - tocJson.length), Buffer.alloc(2 * BLOCK)])));
  members.push(footer(tocOffset, !!opts.legacyFooter));
  const blob = Buffer.concat(members);
  return { blob, toc, tocJson, tocOffset, digest: createHash('sha256').update(blob).digest('hex') };
}

/** The tar header of stargz.index.json as Go's archive/tar writes it (name, size, typeflag '0'). */
function tocTarHeader(size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write('stargz.index.json', 0, 'latin1');
  h.write('0000000\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h[156] = 0x30;
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of h) sum += x;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

/** The eStargz footer (51 bytes: gzip header with an SG extra subfield) or the legacy one (47 bytes). */
export function footer(tocOffset: number, legacy = false): Buffer {
  const payload = Buffer.from(`${tocOffset.toString(16).padStart(16, '0')}STARGZ`, 'latin1');
  const extra = legacy ? payload : Buffer.concat([Buffer.from('SG'), u16(payload.length), payload]);
  const head = Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255]);
  // An empty stored final block, then CRC32 = 0 and ISIZE = 0.
  return Buffer.concat([head, u16(extra.length), extra, Buffer.from([1, 0, 0, 0xff, 0xff]), Buffer.alloc(8)]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
