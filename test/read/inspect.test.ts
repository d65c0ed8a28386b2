import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UPSTREAM } from '../helpers/upstream.js';
import { NydusError } from '../../src/errors.js';
import * as v5 from '../../src/format/rafs/v5.js';
import {
  InspectSession, blocksOf, inspectReport, inspectRequest, modeString, parseRequest, renderAnswer, rustDebugName, superFlagWords,
} from '../../src/read/inspect.js';
import type { ImageNode, RafsImage } from '../../src/read/model.js';
import { openImage } from '../../src/read/open.js';

const V6 = resolve(UPSTREAM, 'bootstrap/rafs-v6-2.2.boot');
const V5 = resolve(UPSTREAM, 'repeatable/sha256-nocompress-repeatable');
const BLOB_V6 = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';
const BLOB_V5 = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';

const v6 = () => openImage(V6);
const v5img = () => openImage(V5);
const out = (image: RafsImage, request: string) => renderAnswer(inspectRequest(image, request));

/** The error a request throws (fails the test when it answers). */
function errorOf(image: RafsImage, request: string): NydusError {
  try {
    inspectRequest(image, request);
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    return e as NydusError;
  }
  throw new Error(`request ${JSON.stringify(request)} answered`);
}

/** upstream's stat_single_file block, fields in its order. */
function statBlock(f: { ino: number; name: string; size: number; parent: number; mode: number; nlink: number; mtime: number; nsec: number; blocks: number }): string {
  return `
Inode Number:       ${f.ino}
Name:               "${f.name}"
Size:               ${f.size}
Parent:             ${f.parent}
Mode:               0x${f.mode.toString(16).toUpperCase()}
Permissions:        ${f.mode.toString(8)}
Nlink:              ${f.nlink}
UID:                0
GID:                0
Mtime:              ${f.mtime}
MtimeNsec:          ${f.nsec}
Blocks:             ${f.blocks}
`;
}

const LIB_RS = { ino: 133, name: 'lib.rs', size: 16931, parent: 128, mode: 0o100644, nlink: 1, mtime: 1676819553, nsec: 628661334, blocks: 34 };
const ROOT_V6 = { ino: 128, name: '/', size: 67, parent: 128, mode: 0o40755, nlink: 2, mtime: 0, nsec: 0, blocks: 1 };

describe('inspect requests on the RAFS v6 fixture (rafs-v6-2.2.boot)', () => {
  it('stats: the superblock inode count', () => {
    expect(inspectRequest(v6(), 'stats')).toEqual({ text: '', value: { inodes_count: 3 } });
    expect(out(v6(), 'stats')).toBe('{"inodes_count":3}');
  });

  it('blobs: sorted keys, decimal sizes, no readahead in v6', () => {
    expect(out(v6(), 'blobs')).toBe(
      `[{"blob_id":"${BLOB_V6}","compressed_size":14554,"decompressed_size":36864,"readahead_offset":0,"readahead_size":0}]`,
    );
  });

  it('ls: one line per entry of the root, then null', () => {
    expect(out(v6(), 'ls')).toBe('-    133      "lib.rs"\n-    136      "sync_io.rs"\nnull');
  });

  it('cd: a state change that prints nothing, or upstream\'s complaint', () => {
    expect(out(v6(), 'cd .')).toBe('null');
    expect(out(v6(), 'cd ..')).toBe('null');
    expect(out(v6(), 'cd lib.rs')).toBe('lib.rs is not a directory\nnull');
    expect(out(v6(), 'cd nothing')).toBe('nothing is \nnull');
  });

  it('stat FILE: the inode and its chunk list', () => {
    expect(out(v6(), 'stat lib.rs')).toBe(`${statBlock(LIB_RS)}  Chunk list:
        0 ->
        file offset: 0, chunk index: 0
        compressed size: 4828, decompressed size: 16931
        compressed offset: 0, decompressed offset: 0
        blob id: ${BLOB_V6}
        chunk id: f7e2735f1c6ae9cde91e537416b09d8bb71b306a421d19cc1012a51f93a7fe69
    
null`);
    const sync = out(v6(), 'stat sync_io.rs');
    expect(sync).toContain('Inode Number:       136\nName:               "sync_io.rs"\nSize:               13400\n');
    expect(sync).toContain('        file offset: 0, chunk index: 1\n        compressed size: 2974, decompressed size: 13400\n        compressed offset: 4828, decompressed offset: 20480\n');
    expect(out(v6(), 'stat missing')).toBe('null');
  });

  it('stat . and stat ..: the root, its own parent in v6', () => {
    expect(out(v6(), 'stat .')).toBe(`${statBlock(ROOT_V6)}null`);
    expect(out(v6(), 'stat ..')).toBe(`${statBlock(ROOT_V6)}null`);
  });

  it('prefetch: empty table, and every path of each listed inode', () => {
    expect(out(v6(), 'prefetch')).toBe('[]');
    const img = v6();
    img.prefetch = [133, 128];
    expect(out(img, 'prefetch')).toBe('[{"inode":133,"path":["/lib.rs"]},{"inode":128,"path":["/"]}]');
  });

  it('chunk OFFSET: the chunk at that compressed offset, and nothing for others', () => {
    expect(out(v6(), 'chunk 4828')).toBe(`
File: sync_io.rs                       Parent Path: /                               
Compressed Offset: 4828, Compressed Size: 2974
Decompressed Offset: 20480, Decompressed Size: 13400
Chunk ID: 812465bcc9e88393598311dc5fc93abaeccef0185bcd99f9701d17ebdf9adc3f,
Blob ID: ${BLOB_V6}

null`);
    expect(out(v6(), 'chunk +0')).toContain('File: lib.rs ');
    expect(out(v6(), 'chunk 7')).toBe('null');
  });

  it('icheck INO: path then stat; the root has no parent to stat against', () => {
    expect(out(v6(), 'icheck 133')).toBe(`/lib.rs\n${statBlock(LIB_RS)}null`);
    expect(out(v6(), 'icheck 128')).toBe('/\nnull');
  });

  it('empty, exit and q answer null', () => {
    for (const r of ['', '   ', 'exit', 'q']) expect(out(v6(), r)).toBe('null');
  });
});

describe('request parsing and errors', () => {
  it('splits on ASCII whitespace: a command and at most one argument', () => {
    expect(parseRequest(' blobs')).toEqual({ cmd: 'blobs', arg: undefined });
    expect(parseRequest('stat\t lib.rs extra\n')).toEqual({ cmd: 'stat', arg: 'lib.rs' });
    expect(out(v6(), ' blobs\n')).toBe(out(v6(), 'blobs'));
    expect(out(v6(), 'stat lib.rs ignored')).toBe(out(v6(), 'stat lib.rs'));
  });

  it('unknown requests and wrong argument counts are usage errors', () => {
    for (const r of ['foo', 'stats extra', 'cd', 'stat', 'chunk', 'icheck', 'blobs x']) {
      const e = errorOf(v6(), r);
      expect(e.code).toBe('USAGE');
      expect(e.message).toMatch(new RegExp(`^unsupported inspect request \`${r}\``));
      expect(e.message).not.toContain('\n');
    }
    expect(errorOf(v6(), 'help').message).toBe('help is not supported in inspect request mode');
  });

  it('OFFSET and INO must be decimal u64', () => {
    for (const r of ['chunk abc', 'chunk 0x10', 'chunk -1', 'icheck 1.5', 'icheck 18446744073709551616']) {
      const e = errorOf(v6(), r);
      expect(e.code).toBe('USAGE');
      expect(e.message).toMatch(/^invalid arguments in inspect request `/);
    }
  });

  it('an inode that does not exist fails the request', () => {
    const e = errorOf(v6(), 'icheck 99');
    expect(e.code).toBe('SOURCE');
    expect(e.message).toBe('failed to execute inspect request `icheck 99`: no inode 99');
  });
});

describe('inspect requests on the RAFS v5 fixture (sha256-nocompress-repeatable)', () => {
  it('stats and blobs', () => {
    expect(out(v5img(), 'stats')).toBe('{"inodes_count":51}');
    expect(out(v5img(), 'blobs')).toBe(
      `[{"blob_id":"${BLOB_V5}","compressed_size":3508766,"decompressed_size":3508766,"readahead_offset":0,"readahead_size":0}]`,
    );
  });

  it('ls lists the root directories', () => {
    expect(out(v5img(), 'ls')).toBe('d    2        "hardlink-test"\nd    3        "normal-file-test"\nd    4        "symlink-test"\nnull');
  });

  it('stat DIR has no chunk list; stat . and stat .. fail at the v5 root as upstream does', () => {
    expect(out(v5img(), 'stat hardlink-test')).toBe(`${statBlock({ ino: 2, name: 'hardlink-test', size: 4096, parent: 1, mode: 0o40775, nlink: 2, mtime: 1668232305, nsec: 0, blocks: 8 })}null`);
    expect(errorOf(v5img(), 'stat .').code).toBe('SOURCE');
    expect(errorOf(v5img(), 'stat ..').message).toMatch(/^failed to execute inspect request `stat \.\.`/);
  });

  it('icheck of a hardlink: every path, each named by the first record (the inode table\'s)', () => {
    const text = inspectRequest(v5img(), 'icheck 5').text;
    const foo = { ino: 5, name: 'foo', size: 944, parent: 2, mode: 0o100775, nlink: 3, mtime: 1668232305, nsec: 0, blocks: 2 };
    expect(text).toBe(`/hardlink-test/foo\n${statBlock(foo)}/hardlink-test/test.sh\n${statBlock(foo)}/normal-file-test/test.sh\n${statBlock({ ...foo, parent: 3 })}`);
    expect(out(v5img(), 'icheck 1')).toBe('/\nnull');
  });

  it('chunk 0 names each record sharing the chunk, with its directory', () => {
    const text = inspectRequest(v5img(), 'chunk 0').text;
    expect([...text.matchAll(/^File: (\S+) +Parent Path: (\S+) +$/gm)].map((m) => `${m[2]} ${m[1]}`)).toEqual([
      '/hardlink-test foo', '/hardlink-test test.sh', '/normal-file-test test.sh',
    ]);
  });

  it('prefetch resolves a v5 hardlink to its first record\'s path', () => {
    const img = v5img();
    img.prefetch = [5, 2, 1];
    expect(out(img, 'prefetch')).toBe('[{"inode":5,"path":["/hardlink-test/foo"]},{"inode":2,"path":["/hardlink-test"]},{"inode":1,"path":["/"]}]');
  });

  it('Blocks equals the i_blocks every v5 record stores', () => {
    const buf = readFileSync(V5);
    const sb = v5.decodeSuperBlock(buf, 0);
    const table = v5.decodeInodeTable(buf, sb.s_inode_table_offset, sb.s_inode_table_entries);
    const stored = new Map<number, number>();
    for (let index = 1; index <= sb.s_inode_table_entries; index++) {
      const i = v5.decodeInode(buf, v5.inodeOffset(table, index));
      stored.set(i.i_ino, i.i_blocks);
    }
    const img = v5img();
    const all: ImageNode[] = [];
    const visit = (n: ImageNode) => { all.push(n); n.children?.forEach(visit); };
    visit(img.root);
    expect(all.length).toBe(sb.s_inode_table_entries);
    for (const n of all) expect([n.ino, blocksOf(img, n)]).toEqual([n.ino, stored.get(n.ino)]);
  });
});

describe('an interactive session remembers cd', () => {
  it('cd into a directory, list and stat it, and come back', () => {
    const s = new InspectSession(v5img());
    expect(s.run('cd hardlink-test').text).toBe('');
    expect(s.run('ls').text).toBe('-    5        "foo"\n-    5        "test.sh"\n');
    expect(s.run('stat .').text).toContain('Inode Number:       2\nName:               "hardlink-test"\nSize:               4096\nParent:             1\n');
    expect(s.run('stat test.sh').text).toContain('Name:               "foo"\n');
    expect(() => s.run('stat ..')).toThrow(/^failed to execute inspect request `stat \.\.`/);
    expect(s.run('cd ..').text).toBe('');
    expect(s.run('ls').text).toContain('"symlink-test"');
  });
});

describe('formatting helpers', () => {
  it('names print as Rust Debug of an OsStr', () => {
    expect(rustDebugName(Buffer.from('lib.rs'))).toBe('"lib.rs"');
    expect(rustDebugName(Buffer.from('a"b\\c\n\t\0it\'s'))).toBe('"a\\"b\\\\c\\n\\t\\0it\\\'s"');
    expect(rustDebugName(Buffer.from([0x61, 0xff, 0xe2, 0x82, 0x62]))).toBe('"a\\xFF\\xE2\\x82b"');
    expect(rustDebugName(Buffer.from('caf\u00e9 \u00ad\u0301\u007f'))).toBe('"caf\u00e9 \\u{ad}\\u{301}\\u{7f}"');
  });

  it('modes print like ls -l', () => {
    expect(modeString(0o40755)).toBe('drwxr-xr-x');
    expect(modeString(0o100644)).toBe('-rw-r--r--');
    expect(modeString(0o120777)).toBe('lrwxrwxrwx');
    expect(modeString(0o104755)).toBe('-rwsr-xr-x');
    expect(modeString(0o102644)).toBe('-rw-r-Sr--');
    expect(modeString(0o41777)).toBe('drwxrwxrwt');
    expect(modeString(0o20600)).toBe('crw-------');
    expect(modeString(0o10644)).toBe('prw-r--r--');
  });

  it('superblock flags print as upstream\'s names', () => {
    expect(superFlagWords(0x194)).toBe('HASH_BLAKE3 | EXPLICIT_UID_GID | COMPRESSION_ZSTD | INLINED_CHUNK_DIGEST');
    expect(superFlagWords(0x9)).toBe('COMPRESSION_NONE | HASH_SHA256');
    expect(superFlagWords(0x1000_0000)).toBe('0x10000000');
  });
});

describe('the readable report', () => {
  it('v6: summary, blob table and tree', () => {
    expect(inspectReport(v6())).toBe(`RAFS v6 bootstrap, 20480 bytes
  flags:       0x194 (HASH_BLAKE3 | EXPLICIT_UID_GID | COMPRESSION_ZSTD | INLINED_CHUNK_DIGEST)
  compressor:  zstd
  digester:    blake3
  chunk size:  0x100000 (1048576)
  inodes:      3
  prefetch:    none
blobs (1):
  0: ${BLOB_V6} compressed 14554 uncompressed 36864 chunks 2 chunk size 0x100000 zstd blake3 features: aligned cap_toc chunk-digest tar-header toc
files (3):
  128 drwxr-xr-x 2 0 0    67 1970-01-01 00:00:00 /
  133 -rw-r--r-- 1 0 0 16931 2023-02-19 15:12:33 /lib.rs
  136 -rw-r--r-- 1 0 0 13400 2023-02-19 15:12:33 /sync_io.rs
`);
  });

  it('v5: every entry once per path, symlinks with their targets', () => {
    const report = inspectReport(v5img());
    const files = report.slice(report.indexOf('files (54):\n'));
    expect(files.trimEnd().split('\n')).toHaveLength(55);
    expect(report).toContain('   5 -rwxrwxr-x  3 0 0     944 2022-11-12 05:51:45 /hardlink-test/foo\n');
    expect(report).toContain('features: -\n');
    expect(report).toMatch(/^ +\d+ lrwxrwxrwx .* \/symlink-test\/\S+ -> \S+$/m);
  });
});
