// Tars crafted byte by byte for hostile-input tests: every 512-byte header is written here, with
// nothing normalised or refused, so a test can declare what no tar writer would.
export const BLOCK = 512;
/** The two zero blocks that end an archive. */
export const END = Buffer.alloc(2 * BLOCK);

const oct = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;

/** A number field: octal when it fits, else GNU base-256 (the high bit of the first byte set). */
function num(b: Buffer, off: number, len: number, n: number): void {
  if (n < 8 ** (len - 1)) {
    b.write(oct(n, len), off, 'latin1');
    return;
  }
  b.fill(0, off, off + len);
  let v = BigInt(n);
  for (let i = off + len - 1; i > off; i--, v >>= 8n) b[i] = Number(v & 0xffn);
  b[off] = 0x80;
}
const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

export interface HeaderOptions {
  /** The typeflag character ('0' by default). */
  type?: string;
  /** The size field (defaults to 0). */
  size?: number;
  mode?: number;
  linkname?: string | Buffer;
  mtime?: number;
  /** 'gnu' (default) writes "ustar  \0", 'ustar' "ustar\0" "00", 'v7' no magic. */
  format?: 'gnu' | 'ustar' | 'v7';
  /** Changes the block before its checksum is computed. */
  patch?: (h: Buffer) => void;
}

/** Sets the header checksum: every byte summed with the chksum field counted as spaces. */
export function seal(h: Buffer): Buffer {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** One 512-byte header; the name is cut to its 100-byte field. */
export function header(name: string | Buffer, o: HeaderOptions = {}): Buffer {
  const h = Buffer.alloc(BLOCK);
  Buffer.from(name).copy(h, 0, 0, 100);
  const type = o.type ?? '0';
  h.write(oct(o.mode ?? (type === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(oct(0, 8), 108, 'latin1');
  h.write(oct(0, 8), 116, 'latin1');
  num(h, 124, 12, o.size ?? 0);
  h.write(oct(o.mtime ?? 1_700_000_000, 12), 136, 'latin1');
  h.write(type, 156, 'latin1');
  if (o.linkname !== undefined) Buffer.from(o.linkname).copy(h, 157, 0, 100);
  const format = o.format ?? 'gnu';
  if (format === 'gnu') h.write('ustar  \0', 257, 'latin1');
  if (format === 'ustar') h.write('ustar\x0000', 257, 'latin1');
  if (format !== 'v7') {
    h.write(oct(0, 8), 329, 'latin1');
    h.write(oct(0, 8), 337, 'latin1');
  }
  o.patch?.(h);
  return seal(h);
}

/** A member: its header, its data and the padding to the next block. */
export function entry(name: string | Buffer, o: HeaderOptions & { data?: Buffer | string } = {}): Buffer {
  const data = o.data === undefined ? Buffer.alloc(0) : Buffer.from(o.data);
  return Buffer.concat([header(name, { ...o, size: o.size ?? data.length }), data, pad(data.length)]);
}

export const file = (name: string | Buffer, data: Buffer | string = '') => entry(name, { data });
export const dir = (name: string | Buffer) => entry(name, { type: '5' });
export const symlink = (name: string | Buffer, target: string | Buffer) => entry(name, { type: '2', linkname: target });
export const hardlink = (name: string | Buffer, target: string | Buffer) => entry(name, { type: '1', linkname: target });

/** One PAX record, "LEN KEY=VALUE\n", its length counting its own digits. */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** A PAX 'x' extended header with its records, for the member after it. */
export function pax(records: Array<[string, string | Buffer]>): Buffer {
  const data = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  return entry('././@PaxHeader', { type: 'x', data });
}

/** A GNU long name ('L') or long link ('K') header for the member after it. */
export function gnuLong(type: 'L' | 'K', value: string | Buffer): Buffer {
  return entry('././@LongLink', { type, data: Buffer.concat([Buffer.from(value), Buffer.alloc(1)]) });
}

/** The parts, then the end-of-archive blocks. */
export const tar = (...parts: Buffer[]) => Buffer.concat([...parts, END]);

/**
 * An old-GNU 'S' member for a hand-made map: up to 4 regions in the header, the rest in
 * extension blocks of 21; the data is the regions' bytes (0x61) unless given.
 */
export function gnuSparse(name: string, realSize: number, regions: Array<[number, number]>, data?: Buffer): Buffer {
  const stored = regions.reduce((a, [, s]) => a + s, 0);
  const body = data ?? Buffer.alloc(stored, 0x61);
  const put = (b: Buffer, off: number, [o, s]: [number, number]) => {
    num(b, off, 12, o);
    num(b, off + 12, 12, s);
  };
  const h = header(name, {
    type: 'S', size: body.length,
    patch: (b) => {
      regions.slice(0, 4).forEach((r, i) => put(b, 386 + 24 * i, r));
      b[482] = regions.length > 4 ? 1 : 0;
      num(b, 483, 12, realSize);
    },
  });
  const blocks = [h];
  for (let i = 4; i < regions.length; i += 21) {
    const x = Buffer.alloc(BLOCK);
    regions.slice(i, i + 21).forEach((r, j) => put(x, 24 * j, r));
    x[504] = i + 21 < regions.length ? 1 : 0;
    blocks.push(x);
  }
  return Buffer.concat([...blocks, body, pad(body.length)]);
}

/** A PAX sparse 0.1 member: the map in GNU.sparse.map, the regions' bytes as the data. */
export function paxSparse01(name: string, realSize: number, regions: Array<[number, number]>): Buffer {
  const stored = regions.reduce((a, [, s]) => a + s, 0);
  return Buffer.concat([
    pax([
      ['GNU.sparse.size', String(realSize)],
      ['GNU.sparse.numblocks', String(regions.length)],
      ['GNU.sparse.name', name],
      ['GNU.sparse.map', regions.flat().join(',')],
    ]),
    entry(`GNUSparseFile.0/${name}`, { data: Buffer.alloc(stored, 0x62) }),
  ]);
}

/** A PAX sparse 1.0 member: the map in decimal lines at the start of the data, padded to a block, then the regions' bytes. */
export function paxSparse10(name: string, realSize: number, regions: Array<[number, number]>): Buffer {
  const stored = regions.reduce((a, [, s]) => a + s, 0);
  const map = Buffer.from([regions.length, ...regions.flat()].map((n) => `${n}\n`).join(''), 'latin1');
  const data = Buffer.concat([map, pad(map.length), Buffer.alloc(stored, 0x63)]);
  return Buffer.concat([
    pax([
      ['GNU.sparse.major', '1'],
      ['GNU.sparse.minor', '0'],
      ['GNU.sparse.name', name],
      ['GNU.sparse.realsize', String(realSize)],
    ]),
    entry(`GNUSparseFile.0/${name}`, { data }),
  ]);
}
