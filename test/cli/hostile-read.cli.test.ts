// check, unpack and inspect on hostile images, run as users run them: one line and exit 1 for
// what the image lies about, nothing read outside -D, unpack's tar safe for Python's tarfile
// without a filter, a tar-tarfs image verifying clean, and bounded memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import * as toc from '../../src/format/blob/toc.js';
import * as tarHeader from '../../src/format/blob/tar-header.js';
import { run } from '../helpers/tools.js';
import { nydusImage } from './cli-runner.js';
import { CHUNK_SIZE, blobEntry, buildV6, dir, file, link, oneChunk } from '../read/craft.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nydus-hostile-cli-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** One line on stderr, exit 1, no stack. */
function oneLine(r: { code: number | null; stderr: Buffer }, pattern: RegExp): void {
  const err = r.stderr.toString().trim();
  expect(err.split('\n'), err).toHaveLength(1);
  expect(err).toMatch(pattern);
  expect(r.code).toBe(1);
}

async function build(src: string, name: string, extra: Partial<Parameters<typeof create>[0]> = {}): Promise<{ boot: string; blobDir: string; blobId: string }> {
  const blobDir = join(work, `${name}-blobs`);
  mkdirSync(blobDir, { recursive: true });
  const boot = join(work, `${name}.boot`);
  const r = await create({ source: src, bootstrap: boot, blobDir, ...extra });
  return { boot, blobDir, blobId: r.blobs[0]! };
}

describe('blob ids from a bootstrap never leave -D', () => {
  it('an id "../outside" (a copy of the blob sits there) fails in one line for check and unpack', async () => {
    const src = join(work, 'src-id');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'hello\n'.repeat(1000));
    const { boot, blobDir, blobId } = await build(src, 'id');
    const evil = `../outside${'x'.repeat(blobId.length - 10)}`;
    copyFileSync(join(blobDir, blobId), join(blobDir, evil));
    const patched = join(work, 'id-patched.boot');
    writeFileSync(patched, Buffer.from(readFileSync(boot).toString('latin1').split(blobId).join(evil), 'latin1'));
    oneLine(await nydusImage(['check', '-B', patched, '-D', blobDir]), /id-patched\.boot: blob_table\[0\]\.blob_id: blob id "\.\.\/outside/);
    const out = join(work, 'id.tar');
    oneLine(await nydusImage(['unpack', '-B', patched, '-D', blobDir, '--output', out]), /blob_table\[0\]\.blob_id: blob id/);
    expect(existsSync(out)).toBe(false);
  });
});

describe("unpack's tar extracts safely with Python's tarfile and no filter", () => {
  it('a hardlink names its first member relative, never a host path', async () => {
    const outer = mkdtempSync(join(work, 'py-'));
    // A host file at an absolute path the image also holds: a link name "/<that path>" would
    // make tarfile link the host file into the output.
    const victim = join(outer, 'victim');
    writeFileSync(victim, 'host\n');
    const src = join(work, 'src-py');
    const inImage = join(src, victim);
    mkdirSync(join(inImage, '..'), { recursive: true });
    writeFileSync(inImage, 'image\n');
    linkSync(inImage, join(src, 'zz-second-name'));
    mkdirSync(join(src, 'sub'));
    writeFileSync(join(src, 'sub', 'x'), 'x');
    const { boot, blobDir } = await build(src, 'py');
    const tar = join(work, 'py.tar');
    const u = await nydusImage(['unpack', '-B', boot, '-D', blobDir, '--output', tar]);
    expect(u.code, u.stderr.toString()).toBe(0);
    const inner = join(outer, 'inner');
    mkdirSync(inner);
    const py = await run('python3', ['-c', 'import sys, tarfile\nwith tarfile.open(sys.argv[1]) as t:\n    t.extractall(sys.argv[2])', tar, inner]);
    expect(py.code, py.stderr.toString()).toBe(0);
    expect(readdirSync(outer).sort()).toEqual(['inner', 'victim']);
    expect(readFileSync(victim, 'utf8')).toBe('host\n');
    const second = statSync(join(inner, 'zz-second-name'));
    expect(second.ino).toBe(statSync(join(inner, inImage.slice(src.length))).ino);
    expect(second.ino).not.toBe(statSync(victim).ino);
  });
});

describe('tar-tarfs images verify clean', () => {
  it('check -D and unpack --verify of a GNU tar exit 0; a truncated tar is caught', async () => {
    const src = join(work, 'src-tarfs');
    mkdirSync(join(src, 'd'), { recursive: true });
    writeFileSync(join(src, 'a'), 'hello\n');
    writeFileSync(join(src, 'd', 'b'), Buffer.alloc(100_000, 7));
    const tar = join(work, 'tarfs.tar');
    const t = await run('tar', ['-cf', tar, '-C', src, '.']);
    expect(t.code).toBe(0);
    const blobDir = join(work, 'tarfs-blobs');
    mkdirSync(blobDir);
    const boot = join(work, 'tarfs.boot');
    const id = 'ab'.repeat(32);
    const c = await nydusImage(['create', '-t', 'tar-tarfs', '--blob-id', id, '-B', boot, '-D', blobDir, tar]);
    expect(c.code, c.stderr.toString()).toBe(0);
    const ck = await nydusImage(['check', '-B', boot, '-D', blobDir]);
    expect(ck.code, ck.stderr.toString()).toBe(0);
    const out = join(work, 'tarfs-out.tar');
    const u = await nydusImage(['unpack', '-B', boot, '-D', blobDir, '--output', out, '--verify']);
    expect(u.code, u.stderr.toString()).toBe(0);
    // The chunks carry no digest (the format has none for tarfs); what it does hold, their place
    // and size in the tar, is still checked.
    truncateSync(join(blobDir, id), 2048);
    oneLine(await nydusImage(['check', '-B', boot, '-D', blobDir]), /blob is shorter than referenced/);
  });
});

describe('inline bootstraps: claims bounded, corruption in one line naming the file', () => {
  let blob: string;
  beforeAll(async () => {
    const src = join(work, 'src-inline');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'inline\n');
    blob = join(work, 'inline.blob');
    await create({ source: src, blob, blobInlineMeta: true, blobToc: true, compressor: 'zstd' });
  });

  /** Where the image.boot TOC entry sits (the last 128-byte entry named so, before the TOC's header). */
  function bootEntryAt(b: Buffer): number {
    const at = b.subarray(0, b.length - tarHeader.SIZE).lastIndexOf(Buffer.from(`${toc.NAME_IMAGE_BOOT}\0`)) - 8;
    expect(toc.decode(b, at).name).toBe(toc.NAME_IMAGE_BOOT);
    return at;
  }

  /** The blob with its image.boot TOC entry changed by `edit`. */
  function patchToc(edit: (e: toc.TocEntry) => void, name: string): string {
    const b = readFileSync(blob);
    const at = bootEntryAt(b);
    const e = toc.decode(b, at);
    edit(e);
    toc.encode(e).subarray(0, 80).copy(b, at);
    const out = join(work, name);
    writeFileSync(out, b);
    return out;
  }

  it('loads as built', async () => {
    expect((await nydusImage(['check', '-B', blob])).code).toBe(0);
  });

  it('an uncompressed size of 2^40 is refused by BOOTSTRAP_MAX', async () => {
    const f = patchToc((e) => { e.uncompressed_size = 2 ** 40; }, 'big-claim.blob');
    oneLine(await nydusImage(['check', '-B', f]), /big-claim\.blob: toc_entry image\.boot uncompressed_size: 1099511627776 exceeds BOOTSTRAP_MAX/);
  });

  it('an offset of 2^40 is a format error naming the file', async () => {
    const f = patchToc((e) => { e.compressed_offset = 2 ** 40; }, 'far.blob');
    oneLine(await nydusImage(['check', '-B', f]), /far\.blob: toc_entry\.compressed_offset = 1099511627776: .*past the end of the blob/);
  });

  it('corrupt zstd data is a format error naming the file', async () => {
    const f = patchToc(() => undefined, 'corrupt.blob');
    const b = readFileSync(f);
    const boot = toc.decode(b, bootEntryAt(b));
    b.fill(0x5a, boot.compressed_offset + 8, boot.compressed_offset + boot.compressed_size);
    writeFileSync(f, b);
    oneLine(await nydusImage(['check', '-B', f]), /corrupt\.blob: /);
  });
});

describe('amplification: one huge chunk list named thousands of times', () => {
  it('check loads it under a 256 MB heap', async () => {
    const n = 20_000;
    const f = file('big', CHUNK_SIZE * n, Array.from({ length: n }, (_, k) => ({ chunk: 0, fileOffset: k * CHUNK_SIZE })));
    const names = Array.from({ length: 3000 }, (_, i) => link(`l${String(i).padStart(5, '0')}`, f));
    const boot = join(work, 'amp.boot');
    writeFileSync(boot, buildV6(dir('', [f, ...names]), { chunks: [oneChunk()], blobs: [blobEntry('b', CHUNK_SIZE)] }));
    const r = await nydusImage(['check', '-B', boot], { env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=256' }, timeoutMs: 60_000 });
    expect(r.code, r.stderr.toString().slice(0, 500)).toBe(0);
  });
});
