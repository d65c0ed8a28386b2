// `inspect`: upstream's inspector requests (stats, ls, cd, stat, blobs, prefetch, chunk, icheck)
// answered over a loaded image, and a readable report of the whole image.
//
// An answer is what upstream's request mode prints: the lines its command println!s (ls, cd,
// stat, chunk and icheck print text and return nothing), then the returned JSON value, or
// `null`. Upstream serialises with serde_json's default sorted maps, so objects here are built
// with their keys in sorted order.
import { NydusError } from '../errors.js';
import { SuperFlags } from '../format/rafs/v5.js';
import { decodeDev } from '../format/erofs/inode.js';
import { featureWords } from './check.js';
import type { BlobInfo, ImageNode, RafsImage } from './model.js';
import {
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, isDir, isReg, isSymlink,
} from './model.js';

export interface InspectAnswer {
  /** Lines upstream prints before the value (each ends with a newline), or "". */
  text: string;
  /** The JSON value upstream returns, or null. */
  value: unknown;
}

/** Exactly what `inspect -R REQUEST` writes to stdout: the text, then compact JSON, no newline. */
export const renderAnswer = (a: InspectAnswer): string => a.text + JSON.stringify(a.value ?? null);

type ArgKind = 'DIR' | 'FILE' | 'OFFSET' | 'INO';

interface RequestSpec {
  name: string;
  arg?: ArgKind;
  help: string;
  run(s: InspectSession, arg: string, request: string): InspectAnswer;
}

/** The one table of requests: parsing, `help` and errors all read it. */
export const REQUESTS: readonly RequestSpec[] = [
  { name: 'stats', help: 'Display RAFS filesystem metadata', run: (s) => s.stats() },
  { name: 'ls', help: 'Show files in current directory', run: (s) => s.ls() },
  { name: 'cd', arg: 'DIR', help: 'Change current directory', run: (s, a) => s.cd(a) },
  { name: 'stat', arg: 'FILE', help: 'Show particular information of RAFS file', run: (s, a, r) => s.stat(a, r) },
  { name: 'blobs', help: 'Show blob table', run: (s) => s.blobs() },
  { name: 'prefetch', help: 'Show prefetch table', run: (s, _a, r) => s.prefetch(r) },
  { name: 'chunk', arg: 'OFFSET', help: 'List basic info of a single chunk together with a list of files that share it', run: (s, a, r) => s.chunk(parseU64(a, r, 'OFFSET')) },
  { name: 'icheck', arg: 'INO', help: 'Show path of the inode and basic information', run: (s, a, r) => s.icheck(parseU64(a, r, 'INO'), r) },
];

/** Requests that end an interactive session (and answer null in request mode). */
export const EXIT_REQUESTS = ['exit', 'q'];

export function inspectUsage(): string {
  const rows = REQUESTS.map((r) => [`${r.name}${r.arg ? ` ${r.arg}` : ''}:`, r.help]);
  rows.push(['exit:', 'Exit']);
  return rows.map(([a, b]) => `    ${a.padEnd(20)}${b}\n`).join('');
}

/** Splits a request the way upstream does: ASCII whitespace, a command and at most one argument. */
export function parseRequest(request: string): { cmd?: string; arg?: string } {
  const words = request.split(/[ \t\n\f\r]+/).filter((w) => w !== '');
  return { cmd: words[0], arg: words[1] };
}

/** Answers one request in one-shot mode (a fresh session at the root), as `inspect -R` does. */
export function inspectRequest(image: RafsImage, request: string): InspectAnswer {
  return new InspectSession(image).run(request);
}

const ROOT_NAME = '/';

interface Placed {
  node: ImageNode;
  parent?: ImageNode;
  path: string;
}

/**
 * One inspector: the image plus a current directory, which only `cd` changes (in request mode
 * every session answers one request, so `cd` changes nothing anyone sees).
 */
export class InspectSession {
  readonly image: RafsImage;
  private cwd: ImageNode;
  private readonly parents: ImageNode[] = [];
  private placed?: Placed[];
  private canonical?: Map<number, Placed>;
  private dirPaths?: Map<ImageNode, string>;

  constructor(image: RafsImage) {
    this.image = image;
    this.cwd = image.root;
  }

  /** Runs one request; throws NydusError for an unknown request, bad argument or failure. */
  run(request: string): InspectAnswer {
    const shown = request.trim();
    const { cmd, arg } = parseRequest(request);
    if (cmd === undefined || EXIT_REQUESTS.includes(cmd)) return { text: '', value: null };
    if (cmd === 'help') throw new NydusError('USAGE', 'help is not supported in inspect request mode');
    const spec = REQUESTS.find((r) => r.name === cmd);
    if (!spec || (spec.arg !== undefined) !== (arg !== undefined)) {
      const want = REQUESTS.map((r) => (r.arg ? `${r.name} ${r.arg}` : r.name)).join(', ');
      throw new NydusError('USAGE', `unsupported inspect request \`${shown}\` (one of: ${want})`);
    }
    return spec.run(this, arg ?? '', shown);
  }

  stats(): InspectAnswer {
    return { text: '', value: { inodes_count: this.image.inodeCount } };
  }

  ls(): InspectAnswer {
    let text = '';
    for (const c of this.cwd.children ?? []) {
      const mode = this.inodeOf(c).mode;
      const sign = isReg(mode) ? '-' : isDir(mode) ? 'd' : isSymlink(mode) ? 'l' : ' ';
      text += `${sign}    ${String(c.ino).padEnd(8)} ${rustDebugName(c.name)}\n`;
    }
    return { text, value: null };
  }

  cd(dir: string): InspectAnswer {
    if (dir === '.') return { text: '', value: null };
    if (dir === '..') {
      const up = this.parents.pop();
      if (up) this.cwd = up;
      return { text: '', value: null };
    }
    const child = this.childNamed(dir);
    if (child && isDir(child.mode)) {
      this.parents.push(this.cwd);
      this.cwd = child;
      return { text: '', value: null };
    }
    // Upstream leaves its reason empty when nothing has that name.
    return { text: `${dir} is ${child ? 'not a directory' : ''}\n`, value: null };
  }

  stat(file: string, request: string): InspectAnswer {
    if (file === '.') {
      const parent = this.parentOfCwd(request);
      return { text: this.statText(parent, this.cwd), value: null };
    }
    if (file === '..') {
      // Upstream finds ".." among the directory's entries and stats the parent; v5 then fails
      // to look ".." up by name among the children.
      const up = this.parents[this.parents.length - 1] ?? this.image.root;
      if (this.image.version === 5) throw failed(request, 'no child named ".."');
      return { text: this.statText(this.cwd, up), value: null };
    }
    const child = this.childNamed(file);
    if (!child) return { text: '', value: null };
    let text = this.statText(this.cwd, child);
    if (isReg(child.mode)) {
      text += '  Chunk list:\n';
      (child.chunks ?? []).forEach((c, i) => {
        text += `        ${i} ->\n`
          + `        file offset: ${i * this.image.chunkSize}, chunk index: ${c.index}\n`
          + `        compressed size: ${c.compressedSize}, decompressed size: ${c.uncompressedSize}\n`
          + `        compressed offset: ${c.compressedOffset}, decompressed offset: ${c.uncompressedOffset}\n`
          + `        blob id: ${this.blobId(c.blobIndex)}\n`
          + `        chunk id: ${c.digest.toString('hex')}\n    \n`;
      });
    }
    return { text, value: null };
  }

  blobs(): InspectAnswer {
    return {
      text: '',
      value: this.image.blobs.map((b) => {
        const r = readahead(b);
        return {
          blob_id: b.blobId,
          compressed_size: b.compressedSize,
          decompressed_size: b.uncompressedSize,
          readahead_offset: r.offset,
          readahead_size: r.size,
        };
      }),
    };
  }

  prefetch(request: string): InspectAnswer {
    return { text: '', value: this.image.prefetch.map((ino) => ({ inode: ino, path: this.pathsOf(ino, request) })) };
  }

  chunk(offset: bigint): InspectAnswer {
    let text = '';
    // Every name of an inode shares its chunk list: it is searched once per inode, not per name.
    const found = new Map<number, NonNullable<ImageNode['chunks']>>();
    for (const { node, parent } of this.allPlaced()) {
      if (!isReg(node.mode) || !parent) continue;
      let hits = found.get(node.ino);
      if (!hits) {
        hits = (node.chunks ?? []).filter((c) => BigInt(c.compressedOffset) === offset);
        found.set(node.ino, hits);
      }
      for (const c of hits) {
        text += `\nFile: ${padChars(lossy(node.name), 32)} Parent Path: ${padChars(this.dirPath(parent), 32)}\n`
          + `Compressed Offset: ${c.compressedOffset}, Compressed Size: ${c.compressedSize}\n`
          + `Decompressed Offset: ${c.uncompressedOffset}, Decompressed Size: ${c.uncompressedSize}\n`
          + `Chunk ID: ${c.digest.toString('hex')},\n`
          + `Blob ID: ${this.blobId(c.blobIndex)}\n\n`;
      }
    }
    return { text, value: null };
  }

  icheck(ino: bigint, request: string): InspectAnswer {
    const inode = this.nodeByIno(ino, request);
    let text = '';
    if (this.image.version === 6 && !isDir(inode.mode)) {
      // v6 files have no parent pointer: every directory entry naming the nid is a parent.
      for (const parent of this.fileParents(inode.ino)) {
        const name = firstChildNamed(parent, inode.ino);
        text += `${joinPath(this.dirPath(parent), lossy(name))}\n${this.statText(parent, inode)}`;
      }
    } else {
      for (const { node, parent, path } of this.allPlaced()) {
        if (node.ino !== inode.ino) continue;
        text += `${path}\n${parent ? this.statText(parent, node) : ''}`;
      }
    }
    return { text, value: null };
  }

  // ---- upstream's stat_single_file and the lookups behind it ----

  private statText(parent: ImageNode, node: ImageNode): string {
    const n = this.inodeOf(node);
    const rows: Array<[string, string | number]> = [
      ['Inode Number:', n.ino],
      ['Name:', rustDebugName(this.fileName(parent, node))],
      ['Size:', n.size],
      ['Parent:', parent.ino],
      ['Mode:', `0x${n.mode.toString(16).toUpperCase()}`],
      ['Permissions:', n.mode.toString(8)],
      ['Nlink:', n.nlink],
      ['UID:', n.uid],
      ['GID:', n.gid],
      ['Mtime:', n.mtime],
      ['MtimeNsec:', n.mtimeNsec],
      ['Blocks:', blocksOf(this.image, n)],
    ];
    return `\n${rows.map(([k, v]) => `${k.padEnd(20)}${v}`).join('\n')}\n`;
  }

  /** Upstream's get_file_name: the entry naming a v6 file in its parent; else the inode's own name. */
  private fileName(parent: ImageNode, node: ImageNode): Buffer {
    if (this.image.version === 6 && !isDir(node.mode)) return firstChildNamed(parent, node.ino);
    return this.extendedName(node);
  }

  /** The name an inode carries on its own: "/" for the root, v5's record name, v6's dirent name. */
  private extendedName(node: ImageNode): Buffer {
    if (node.ino === this.image.root.ino) return Buffer.from(ROOT_NAME);
    return this.inodeOf(node).name;
  }

  /**
   * The record an inode number resolves to. v5 hardlinks are separate records sharing i_ino, and
   * the inode table points at the first (the builder numbers records breadth-first).
   */
  private inodeOf(node: ImageNode): ImageNode {
    if (this.image.version !== 5) return node;
    return this.canonicalMap().get(node.ino)?.node ?? node;
  }

  private nodeByIno(ino: bigint, request: string): ImageNode {
    const found = ino <= BigInt(Number.MAX_SAFE_INTEGER) ? this.canonicalMap().get(Number(ino)) : undefined;
    if (!found) throw failed(request, `no inode ${ino}`);
    return found.node;
  }

  private parentOfCwd(request: string): ImageNode {
    const up = this.parents[this.parents.length - 1];
    if (up) return up;
    // v6 answers the root's ".." with the root; v5's root record has parent 0, which is no inode.
    if (this.image.version === 5) throw failed(request, 'the root has no parent inode (0)');
    return this.image.root;
  }

  private childNamed(name: string): ImageNode | undefined {
    const want = Buffer.from(name);
    return (this.cwd.children ?? []).find((c) => c.name.equals(want));
  }

  private blobId(index: number): string {
    const b = this.image.blobs[index];
    if (!b) throw new NydusError('FORMAT', `can not find blob by index: ${index}`);
    return b.blobId;
  }

  /** Upstream's path_from_ino for the inspector: every path of a v6 file, else the one path. */
  private pathsOf(ino: number, request: string): string[] {
    const node = this.nodeByIno(BigInt(ino), request);
    if (node === this.image.root) return [ROOT_NAME];
    if (this.image.version === 6 && !isDir(node.mode)) {
      return this.fileParents(ino).map((p) => joinPath(this.dirPath(p), lossy(firstChildNamed(p, ino))));
    }
    return [this.canonicalMap().get(ino)!.path];
  }

  /** The directory holding each entry of a v6 file, once per entry, in walk order. */
  private fileParents(ino: number): ImageNode[] {
    return this.allPlaced().filter((p) => p.node.ino === ino && p.parent && !isDir(p.node.mode)).map((p) => p.parent!);
  }

  private dirPath(dir: ImageNode): string {
    if (!this.dirPaths) {
      this.dirPaths = new Map();
      for (const p of this.allPlaced()) if (isDir(p.node.mode)) this.dirPaths.set(p.node, p.path);
    }
    return this.dirPaths.get(dir) ?? ROOT_NAME;
  }

  /** Every entry with its parent and path, depth first in directory order (upstream's walk_dir). */
  private allPlaced(): Placed[] {
    if (this.placed) return this.placed;
    const out: Placed[] = [];
    const stack: Placed[] = [{ node: this.image.root, path: ROOT_NAME }];
    for (let p = stack.pop(); p; p = stack.pop()) {
      out.push(p);
      const children = p.node.children ?? [];
      for (let i = children.length - 1; i >= 0; i--) {
        stack.push({ node: children[i], parent: p.node, path: joinPath(p.path, lossy(children[i].name)) });
      }
    }
    this.placed = out;
    return out;
  }

  /** Inode number → its first entry breadth first (v5's inode table order; v6 nids are unique). */
  private canonicalMap(): Map<number, Placed> {
    if (this.canonical) return this.canonical;
    const map = new Map<number, Placed>();
    let level: Placed[] = [{ node: this.image.root, path: ROOT_NAME }];
    while (level.length > 0) {
      const next: Placed[] = [];
      for (const p of level) {
        if (!map.has(p.node.ino)) map.set(p.node.ino, p);
        for (const c of p.node.children ?? []) next.push({ node: c, parent: p.node, path: joinPath(p.path, lossy(c.name)) });
      }
      level = next;
    }
    this.canonical = map;
    return map;
  }
}

function failed(request: string, why: string): NydusError {
  return new NydusError('SOURCE', `failed to execute inspect request \`${request}\`: ${why}`);
}

/** Rust's u64 FromStr: decimal digits with an optional leading "+". */
function parseU64(arg: string, request: string, what: string): bigint {
  if (/^\+?[0-9]+$/.test(arg)) {
    const n = BigInt(arg.replace(/^\+/, ''));
    if (n <= 0xffff_ffff_ffff_ffffn) return n;
  }
  throw new NydusError('USAGE', `invalid arguments in inspect request \`${request}\`: ${what} must be a decimal u64`);
}

function firstChildNamed(parent: ImageNode, ino: number): Buffer {
  return (parent.children ?? []).find((c) => c.ino === ino)?.name ?? Buffer.alloc(0);
}

const joinPath = (dir: string, name: string) => (dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`);
const lossy = (b: Buffer) => b.toString('utf8');
/** Rust's `{:width$}`: pads to a number of chars, not bytes. */
const padChars = (s: string, width: number) => s + ' '.repeat(Math.max(0, width - [...s].length));

/**
 * A v5 blob table carries a readahead range per blob (v6 has none). The reader model may carry
 * it as readaheadOffset/readaheadSize; without them the range is empty, as every builder writes.
 */
function readahead(b: BlobInfo): { offset: number; size: number } {
  const r = b as BlobInfo & { readaheadOffset?: number; readaheadSize?: number };
  return { offset: r.readaheadOffset ?? 0, size: r.readaheadSize ?? 0 };
}

/**
 * st_blocks as upstream reports it: v6 computes size/512 rounded up; v5 stores what the builder
 * computed, (size + 8-aligned xattr pairs) / 512 rounded up.
 */
export function blocksOf(image: RafsImage, node: ImageNode): number {
  let bytes = node.size;
  if (image.version === 5) {
    const pairs = node.xattrs.reduce((n, x) => n + 4 + x.name.length + 1 + x.value.length, 0);
    bytes += Math.ceil(pairs / 8) * 8;
  }
  return Math.ceil(bytes / 512);
}

// ---- Rust's Debug for OsStr: quoted, escapes, invalid UTF-8 bytes as \xNN ----

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}\p{Grapheme_Extend}]/u;
const SHORT_ESCAPES: Record<string, string> = { '\0': '\\0', '\t': '\\t', '\r': '\\r', '\n': '\\n', '\\': '\\\\', "'": "\\'", '"': '\\"' };

/** Splits bytes into valid UTF-8 text and single invalid bytes. */
function* utf8Pieces(b: Buffer): Generator<string | number> {
  let i = 0;
  while (i < b.length) {
    const len = validSequenceLength(b, i);
    if (len === 0) {
      yield b[i];
      i++;
    } else {
      yield b.toString('utf8', i, i + len);
      i += len;
    }
  }
}

function validSequenceLength(b: Buffer, i: number): number {
  const x = b[i];
  if (x < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (x >= 0xc2 && x <= 0xdf) return cont(1) ? 2 : 0;
  if (x >= 0xe0 && x <= 0xef) {
    const lo = x === 0xe0 ? 0xa0 : 0x80;
    const hi = x === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (x >= 0xf0 && x <= 0xf4) {
    const lo = x === 0xf0 ? 0x90 : 0x80;
    const hi = x === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** `format!("{:?}", OsStr)`: how upstream prints names in ls and stat. */
export function rustDebugName(name: Buffer): string {
  let out = '"';
  for (const piece of utf8Pieces(name)) {
    if (typeof piece === 'number') {
      out += `\\x${piece.toString(16).toUpperCase().padStart(2, '0')}`;
      continue;
    }
    for (const ch of piece) {
      const short = SHORT_ESCAPES[ch];
      if (short) out += short;
      else if (ch !== ' ' && NON_PRINTABLE.test(ch)) out += `\\u{${ch.codePointAt(0)!.toString(16)}}`;
      else out += ch;
    }
  }
  return `${out}"`;
}

/** A name or path for the report: control characters and invalid UTF-8 bytes escaped. */
function printable(b: Buffer): string {
  // Most names are plain UTF-8 without control characters: no per-character walk for them.
  const plain = b.toString('utf8');
  if (!plain.includes('\uFFFD') && !/\p{Cc}/u.test(plain)) return plain;
  let out = '';
  for (const piece of utf8Pieces(b)) {
    if (typeof piece === 'number') out += `\\x${piece.toString(16).padStart(2, '0')}`;
    else out += piece.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  }
  return out;
}

// ---- the readable report (inspect without -R when stdin is not a terminal) ----

const SUPER_FLAG_WORDS = Object.entries(SuperFlags) as Array<[string, number]>;

/** RAFS superblock flags as upstream's names, in bit order; unknown bits in hex. */
export function superFlagWords(flags: number): string {
  const words = SUPER_FLAG_WORDS.filter(([, bit]) => (flags & bit) !== 0).map(([w]) => w);
  const known = SUPER_FLAG_WORDS.reduce((m, [, bit]) => m | bit, 0);
  const unknown = (flags & ~known) >>> 0;
  if (unknown !== 0) words.push(`0x${unknown.toString(16)}`);
  return words.join(' | ');
}

const TYPE_CHARS: ReadonlyArray<[number, string]> = [
  [S_IFDIR, 'd'], [S_IFREG, '-'], [S_IFLNK, 'l'], [S_IFCHR, 'c'], [S_IFBLK, 'b'], [S_IFIFO, 'p'], [S_IFSOCK, 's'],
];

/** `ls -l`'s mode column, e.g. "drwxr-xr-x", "-rwsr-x--T". */
export function modeString(mode: number): string {
  const type = TYPE_CHARS.find(([t]) => (mode & S_IFMT) === t)?.[1] ?? '?';
  const triplet = (shift: number, special: number, on: string, off: string) => {
    const bits = (mode >> shift) & 7;
    const x = (bits & 1) !== 0;
    const exec = (mode & special) !== 0 ? (x ? on : off) : x ? 'x' : '-';
    return `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${exec}`;
  };
  return type + triplet(6, 0o4000, 's', 'S') + triplet(3, 0o2000, 's', 'S') + triplet(0, 0o1000, 't', 'T');
}

function formatMtime(sec: number): string {
  const d = new Date(sec * 1000);
  if (!Number.isFinite(d.getTime())) return String(sec);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}

/** The size column: bytes, or "major, minor" for a device (rdev in new_encode_dev form). */
function sizeColumn(n: ImageNode): string {
  const type = n.mode & S_IFMT;
  if (type !== S_IFCHR && type !== S_IFBLK) return String(n.size);
  const { major, minor } = decodeDev(n.rdev);
  return `${major}, ${minor}`;
}

/** The report: superblock summary, blob table, and one `ls -l` style line per entry. */
export function inspectReport(img: RafsImage): string {
  const lines: string[] = [
    `RAFS v${img.version} bootstrap, ${img.bootstrapSize} bytes`,
    `  flags:       0x${img.flags.toString(16)} (${superFlagWords(img.flags) || 'none'})`,
    `  compressor:  ${img.compressor}`,
    `  digester:    ${img.digester}`,
    `  chunk size:  0x${img.chunkSize.toString(16)} (${img.chunkSize})`,
    `  inodes:      ${img.inodeCount}`,
    `  prefetch:    ${img.prefetch.length === 0 ? 'none' : img.prefetch.join(' ')}`,
    `blobs (${img.blobs.length}):`,
  ];
  for (const b of img.blobs) {
    lines.push(`  ${b.index}: ${b.blobId} compressed ${b.compressedSize} uncompressed ${b.uncompressedSize} chunks ${b.chunkCount} chunk size 0x${b.chunkSize.toString(16)} ${b.compressor} ${b.digester} features: ${featureWords(b.features) || '-'}`);
  }

  const entries = rawEntries(img.root);
  lines.push(`files (${entries.length}):`);
  const cols = entries.map(({ node, path }) => [
    String(node.ino), modeString(node.mode), String(node.nlink), String(node.uid), String(node.gid), sizeColumn(node), formatMtime(node.mtime),
    printable(path) + (node.target ? ` -> ${printable(node.target)}` : ''),
  ]);
  // A loop, not Math.max(...spread): a directory of 200,000 entries overflows an argument list.
  const widths = [0, 0, 0, 0, 0, 0];
  for (const c of cols) for (let i = 0; i < widths.length; i++) if (c[i].length > widths[i]) widths[i] = c[i].length;
  for (const c of cols) {
    const right = (i: number) => c[i].padStart(widths[i]);
    lines.push(`  ${right(0)} ${c[1]} ${right(2)} ${right(3)} ${right(4)} ${right(5)} ${c[6]} ${c[7]}`);
  }
  return lines.join('\n') + '\n';
}

/** Every entry depth first with its path as raw bytes (the session keeps lossy strings, as upstream prints). */
function rawEntries(root: ImageNode): Array<{ node: ImageNode; path: Buffer }> {
  const out: Array<{ node: ImageNode; path: Buffer }> = [];
  const stack: Array<{ node: ImageNode; path: Buffer }> = [{ node: root, path: Buffer.from(ROOT_NAME) }];
  for (let p = stack.pop(); p; p = stack.pop()) {
    out.push(p);
    const children = p.node.children ?? [];
    const base = p.node === root ? p.path : Buffer.concat([p.path, Buffer.from('/')]);
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i], path: Buffer.concat([base, children[i].name]) });
  }
  return out;
}
