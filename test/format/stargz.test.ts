// eStargz pieces on their own: a gzip member's first bytes (bounded whatever the member expands
// to), its header's optional fields, both footers, and the TOC's checks of every field.
import { describe, expect, it } from 'vitest';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { inflateMemberPrefix, memberHeaderLength, parseFooter } from '../../src/format/stargz/gzip.js';
import { parseToc } from '../../src/format/stargz/toc.js';
import { NydusError } from '../../src/errors.js';
import { footer } from '../helpers/estargz.js';
import { prng } from '../helpers/tree.js';

function thrown(f: () => unknown): NydusError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    expect((e as Error).message).not.toContain('\n');
    return e as NydusError;
  }
  throw new Error('expected a NydusError');
}

describe('inflateMemberPrefix', () => {
  it('returns the first bytes of a member that goes on past them, and of one cut short', () => {
    const data = Buffer.concat([prng(1, 200_000), Buffer.alloc(5000, 7)]);
    const member = gzipSync(data);
    expect(inflateMemberPrefix(member, 200_000, 'm').equals(data.subarray(0, 200_000))).toBe(true);
    // Cut inside the member, after the bytes asked for were stored (prng data stores ~1:1).
    expect(inflateMemberPrefix(member.subarray(0, 200_500), 150_000, 'm').equals(data.subarray(0, 150_000))).toBe(true);
    // The next member's bytes after this one are ignored.
    const two = Buffer.concat([gzipSync(Buffer.from('first')), gzipSync(Buffer.from('second'))]);
    expect(inflateMemberPrefix(two, 5, 'm').toString()).toBe('first');
  });

  it('a member that expands to 256 MiB yields the 4 KiB asked for, the output bounded (no 256 MiB buffer)', () => {
    const bomb = gzipSync(Buffer.alloc(256 << 20), { level: 9 });
    expect(bomb.length).toBeLessThan(300_000);
    const before = process.memoryUsage().arrayBuffers;
    const out = inflateMemberPrefix(bomb, 4096, 'bomb');
    expect(out.length).toBe(4096);
    expect(out.every((b) => b === 0)).toBe(true);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
  });

  it('reads past FEXTRA, FNAME, FCOMMENT and FHCRC; refuses what is not a gzip member', () => {
    const body = deflateRawSync(Buffer.from('payload'));
    const extra = Buffer.from([6, 0, 0x41, 0x42, 2, 0, 1, 2]);
    const head = Buffer.from([0x1f, 0x8b, 8, 0x04 | 0x08 | 0x10 | 0x02, 0, 0, 0, 0, 0, 255]);
    const member = Buffer.concat([head, extra, Buffer.from('name\0comment\0'), Buffer.from([0xaa, 0xbb]), body]);
    expect(memberHeaderLength(member, 'm')).toBe(10 + 8 + 13 + 2);
    expect(inflateMemberPrefix(member, 7, 'm').toString()).toBe('payload');
    expect(thrown(() => inflateMemberPrefix(Buffer.from('not gzip at all'), 4, 'chunk 3')).message).toMatch(/^chunk 3: not a gzip member/);
    expect(thrown(() => memberHeaderLength(Buffer.from([0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 0, 0x41]), 'm')).message).toMatch(/ends inside its file name/);
    expect(thrown(() => memberHeaderLength(Buffer.from([0x1f, 0x8b, 8, 0x20, 0, 0, 0, 0, 0, 0]), 'm')).message).toMatch(/reserved flag bits/);
  });

  it('a member holding fewer bytes than asked, or corrupt deflate data: one line naming it', () => {
    expect(thrown(() => inflateMemberPrefix(gzipSync(Buffer.from('short')), 100, 'chunk 1')).message).toMatch(/^chunk 1: gzip data ends after 5 of 100 bytes/);
    const bad = gzipSync(prng(2, 10_000));
    for (let i = 10; i < 40; i++) bad[i] ^= 0xff;
    expect(thrown(() => inflateMemberPrefix(bad, 10_000, 'chunk 2')).message).toMatch(/^chunk 2: (corrupt gzip data|gzip data ends)/);
  });
});

describe('parseFooter', () => {
  it('reads the eStargz footer and the legacy one at the end of a blob, nothing else', () => {
    const data = Buffer.from('x'.repeat(100));
    expect(parseFooter(Buffer.concat([data, footer(0x1234)]))).toEqual({ tocOffset: 0x1234, footerSize: 51 });
    expect(parseFooter(Buffer.concat([data, footer(0x99, true)]))).toEqual({ tocOffset: 0x99, footerSize: 47 });
    expect(footer(1).length).toBe(51);
    expect(footer(1, true).length).toBe(47);
    expect(parseFooter(Buffer.concat([data, gzipSync(Buffer.alloc(0))]))).toBeUndefined();
    const bad = footer(5);
    bad.write('zz', 16, 'latin1');
    expect(parseFooter(bad)).toBeUndefined();
    expect(parseFooter(Buffer.alloc(10))).toBeUndefined();
  });
});

describe('parseToc', () => {
  const ok = { version: 1, entries: [{ name: 'a', type: 'reg', size: 3, offset: 10, digest: 'sha256:' + '0'.repeat(64), chunkDigest: 'sha256:' + '0'.repeat(64), modtime: '2020-01-02T03:04:05Z', xattrs: { 'user.a': 'AQI=' } }] };

  it('reads the fields upstream reads, modtime as seconds', () => {
    const t = parseToc(JSON.stringify(ok), 'toc');
    expect(t.entries[0]).toMatchObject({ name: 'a', type: 'reg', size: 3, offset: 10, mtime: 1577934245, xattrs: [['user.a', 'AQI=']] });
  });

  it('refuses what is not a TOC, naming the entry and field', () => {
    const bad = (doc: unknown) => thrown(() => parseToc(typeof doc === 'string' ? doc : JSON.stringify(doc), 'toc.json')).message;
    expect(bad('{')).toMatch(/^toc\.json: stargz: the TOC is not JSON/);
    expect(bad([])).toMatch(/not a JSON object/);
    expect(bad({ version: 2, entries: [] })).toMatch(/unsupported index version 2/);
    expect(bad({ version: 1, entries: [] })).toMatch(/TOC array is empty/);
    expect(bad({ version: 1, entries: [{ name: 'a', type: 'socket' }] })).toMatch(/entries\[0\]\.type: invalid type "socket"/);
    expect(bad({ version: 1, entries: [{ name: '', type: 'dir' }] })).toMatch(/entries\[0\]\.name: empty name/);
    expect(bad({ version: 1, entries: [{ name: 'a', type: 'reg', size: -1 }] })).toMatch(/entries\[0\]\.size: -1 is not an integer/);
    expect(bad({ version: 1, entries: [{ name: 'a', type: 'reg', offset: 1.5 }] })).toMatch(/entries\[0\]\.offset: 1\.5/);
    expect(bad({ version: 1, entries: [{ name: 'a', type: 'dir', xattrs: { 'user.a': 5 } }] })).toMatch(/xattrs\["user\.a"\]: value is not a base64 string/);
  });
});
