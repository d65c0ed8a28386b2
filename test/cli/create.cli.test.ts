// `nydus-image create` from the outside: repeatable bytes, FIFO output, the blob layout of
// blob.md §2 walked from the end, the blob id of §5.3, --output-json and the log lines, and
// one-line errors that leave nothing behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, openSync, closeSync, statSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { run, runOk } from '../helpers/tools.js';
import { buildHostileTree, mknod, prng, type TreeManifest } from '../helpers/tree.js';
import { openImage } from '../../src/read/open.js';
import { readBackAndCompare } from '../builder/read-back.js';
import { loggedBlobId, loggedBlobIds, nydusImage, nydusImageOk, UPSTREAM } from './cli-runner.js';

const isRoot = process.getuid?.() === 0;
let work = '';
let src = '';
let manifest: TreeManifest | undefined;
/** A plain tree anyone can build: two files, one of them 2.5 MiB, and a subdirectory. */
let plain = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-create-cli-'));
  plain = join(work, 'plain');
  await mkdir(join(plain, 'sub'), { recursive: true });
  await writeFile(join(plain, 'big.bin'), prng(1, 2.5 * 1024 * 1024));
  await writeFile(join(plain, 'sub', 'small.txt'), 'hello\n');
  if (!isRoot) return;
  src = join(work, 'src');
  manifest = await buildHostileTree(src, { manyEntries: 500 });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function needTree(ctx: SkipContext): TreeManifest {
  if (!manifest) return skipLoudly(ctx, 'building the hostile tree needs root');
  return manifest;
}

let seq = 0;
/** A fresh empty directory for one build's outputs. */
async function outDir(name: string): Promise<string> {
  const d = join(work, `${name}-${++seq}`);
  await mkdir(d);
  return d;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// ---- The blob's tar sections, read independently of src/format (blob.md §2.1, §2.2) ----

interface Section {
  name: string;
  /** Offset of the section's data; its header follows it. */
  offset: number;
  size: number;
  headerOffset: number;
}

function parseTarHeader(h: Buffer): { name: string; size: number } {
  expect(h.length).toBe(512);
  const name = h.subarray(0, 100).toString('latin1').replace(/\0+$/, '');
  expect(h.subarray(100, 124).every((c) => c === 0), `${name}: mode, uid and gid are NUL`).toBe(true);
  expect(h.subarray(257, 265).toString('latin1'), `${name}: GNU magic`).toBe('ustar  \0');
  expect(String.fromCharCode(h[156]!), `${name}: typeflag`).toBe('0');
  const chk = h.subarray(148, 156).toString('latin1');
  expect(chk, `${name}: 7 octal digits and a NUL`).toMatch(/^[0-7]{7}\0$/);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  expect(parseInt(chk, 8), `${name}: checksum`).toBe(sum);
  const sizeField = h.subarray(124, 136).toString('latin1');
  expect(sizeField, `${name}: size`).toMatch(/^[0-7]{11}\0$/);
  return { name, size: parseInt(sizeField, 8) };
}

/** Walks the tar headers backwards from the end of the file; the walk must end exactly at 0. */
function walkSections(blob: Buffer): Section[] {
  const out: Section[] = [];
  let end = blob.length;
  while (end > 0) {
    expect(end, `a tar header ends at ${end}`).toBeGreaterThanOrEqual(512);
    const { name, size } = parseTarHeader(blob.subarray(end - 512, end));
    const offset = end - 512 - size;
    expect(offset, `section ${name} starts inside the file`).toBeGreaterThanOrEqual(0);
    out.unshift({ name, offset, size, headerOffset: end - 512 });
    end = offset;
  }
  return out;
}

/** The TOC's entries: name, offset and size (blob.md §5.1). */
function tocEntries(blob: Buffer, toc: Section): Array<{ name: string; offset: number; size: number; digest: string }> {
  expect(toc.size % 128).toBe(0);
  const out = [];
  for (let o = toc.offset; o < toc.offset + toc.size; o += 128) {
    const e = blob.subarray(o, o + 128);
    out.push({
      name: e.subarray(8, 24).toString('latin1').replace(/\0+$/, ''),
      digest: e.subarray(24, 56).toString('hex'),
      offset: Number(e.readBigUInt64LE(56)),
      size: Number(e.readBigUInt64LE(64)),
    });
  }
  return out;
}

/** blob.md §5.3: sha256 of every byte but the blob.digest payload (its tar header included). */
function blobIdOf(blob: Buffer, sections: Section[]): string {
  const d = sections.find((s) => s.name === 'blob.digest');
  if (!d) return sha256(blob);
  return createHash('sha256').update(blob.subarray(0, d.offset)).update(blob.subarray(d.offset + d.size)).digest('hex');
}

describe('the judge of blob layout, on upstream bytes', () => {
  it('walks blobs/be7d77ee… back to offset 0 and recomputes its id from it', async () => {
    const id = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';
    const blob = await readFile(join(UPSTREAM, 'blobs', id));
    const sections = walkSections(blob);
    expect(sections.map((s) => s.name)).toEqual(['image.blob', 'blob.meta', 'blob.digest', 'rafs.blob.toc']);
    expect(blobIdOf(blob, sections)).toBe(id);
    expect(sha256(blob)).not.toBe(id);
  });
});

describe('create: the blob layout of blob.md §2', () => {
  const variants = [
    { flags: [], sections: [] },
    { flags: ['--features', 'blob-toc'], sections: ['image.blob', 'blob.meta', 'blob.digest', 'rafs.blob.toc'] },
    { flags: ['--blob-inline-meta'], sections: ['image.blob', 'blob.meta', 'image.boot'] },
    { flags: ['--blob-inline-meta', '--features', 'blob-toc'], sections: ['image.blob', 'blob.meta', 'blob.digest', 'image.boot', 'rafs.blob.toc'] },
  ];
  for (const v of variants) {
    it(`${v.flags.join(' ') || '(no flags)'}: sections ${v.sections.join(', ') || 'none, the 4 KiB blob.meta header last'}; the id printed is the blob hash`, async (ctx) => {
      const m = needTree(ctx);
      const out = await outDir('layout');
      const blobPath = join(out, 'blob');
      const inline = v.flags.includes('--blob-inline-meta');
      const r = await nydusImageOk(['create', ...(inline ? [] : ['-B', join(out, 'boot')]), '-b', blobPath, ...v.flags, src]);
      const id = loggedBlobId(r.stderr);
      const blob = await readFile(blobPath);
      const image = openImage(inline ? blobPath : join(out, 'boot'));
      const chunkCount = image.blobs[0]!.chunkCount;
      expect(chunkCount).toBeGreaterThan(10);
      if (v.sections.length === 0) {
        // No tar headers: the file ends with the blob.meta header, magic at both of its ends.
        expect(blob.readUInt32LE(blob.length - 4096)).toBe(0xb10bb10b);
        expect(blob.readUInt32LE(blob.length - 4)).toBe(0xb10bb10b);
        expect(id).toBe(sha256(blob));
        return;
      }
      const sections = walkSections(blob);
      expect(sections.map((s) => s.name)).toEqual(v.sections);
      expect(sections[0]!.offset).toBe(0);
      expect(id).toBe(blobIdOf(blob, sections));
      const meta = sections.find((s) => s.name === 'blob.meta')!;
      // One header covers the chunk-info table and the 4 KiB blob.meta header.
      expect(blob.readUInt32LE(meta.offset + meta.size - 4096)).toBe(0xb10bb10b);
      expect(blob.readUInt32LE(meta.offset + meta.size - 4)).toBe(0xb10bb10b);
      const digest = sections.find((s) => s.name === 'blob.digest');
      if (digest) {
        expect(digest.size).toBe(32 * chunkCount);
        expect(id).not.toBe(sha256(blob));
      }
      const tocSection = sections.find((s) => s.name === 'rafs.blob.toc');
      if (tocSection) {
        const entries = tocEntries(blob, tocSection);
        const expected = ['image.blob', 'blob.meta', 'blob.meta.header', 'blob.digest', ...(inline ? ['image.boot'] : [])];
        expect(entries.map((e) => e.name)).toEqual(expected);
        const byName = new Map(entries.map((e) => [e.name, e]));
        const sec = new Map(sections.map((s) => [s.name, s]));
        expect(byName.get('image.blob')).toMatchObject({ offset: 0, size: sec.get('image.blob')!.size });
        expect(byName.get('blob.meta')!.offset).toBe(meta.offset);
        expect(byName.get('blob.meta')!.size + byName.get('blob.meta.header')!.size).toBe(meta.size);
        expect(byName.get('blob.digest')).toMatchObject({ offset: digest!.offset, size: digest!.size, digest: sha256(blob.subarray(digest!.offset, digest!.offset + digest!.size)) });
        if (inline) expect(byName.get('image.boot')).toMatchObject({ offset: sec.get('image.boot')!.offset, size: sec.get('image.boot')!.size });
        // The separate bootstrap records the TOC's size and digest (blob.md §5.2).
        if (!inline) {
          expect(image.blobs[0]!.tocSize).toBe(tocSection.size + 512);
          expect(image.blobs[0]!.tocDigest.toString('hex')).toBe(sha256(blob.subarray(tocSection.offset)));
        }
      }
      // The blob table's compressed size is the file's (the inlined one: where image.boot starts).
      const img = image.blobs[0]!;
      expect(img.compressedSize).toBe(inline ? sections.find((s) => s.name === 'image.boot')!.offset : blob.length);
      expect(img.blobId).toBe(inline ? 'blob' : id);
      expect(m.counts.regular).toBeGreaterThan(0);
    });
  }

  it('--blob-inline-meta --features blob-toc -D DIR: the blob is DIR/<id>, alone; check reads it and its chunks', async (ctx) => {
    needTree(ctx);
    const dir = await outDir('blob-dir');
    const r = await nydusImageOk(['create', '-D', dir, '--blob-inline-meta', '--features', 'blob-toc', src]);
    const id = loggedBlobId(r.stderr);
    expect(await readdir(dir)).toEqual([id]);
    const blob = await readFile(join(dir, id));
    expect(blobIdOf(blob, walkSections(blob))).toBe(id);
    const c = await nydusImageOk(['check', join(dir, id)]);
    expect(c.stdout.toString()).toMatch(new RegExp(`^RAFS filesystem metadata is valid, referenced data blobs: \\n\\t 0: ${id}, compressed size \\d+, uncompressed size \\d+, chunk size: 1048576, chunk count: \\d+, features: aligned cap_toc chunk-digest fs-meta tar-header toc\\n$`));
    // With the blob directory, check reads every chunk back and verifies its digest.
    await nydusImageOk(['check', join(dir, id), '-D', dir]);
    // And our reader gives back every file of the source from that one file.
    const res = readBackAndCompare(openImage(join(dir, id)), { blobDir: dir }, src);
    expect(res.mismatches).toEqual([]);
    expect(res.files).toBe(manifest!.counts.regular);
  });

  it('check BLOBFILE of a -b build reads the inline bootstrap, naming the blob by its file name', async (ctx) => {
    needTree(ctx);
    const out = await outDir('check-blob');
    const blobPath = join(out, 'my-blob.data');
    await nydusImageOk(['create', '-b', blobPath, '--blob-inline-meta', '--features', 'blob-toc', src]);
    const c = await nydusImageOk(['check', blobPath, '-b', blobPath]);
    expect(c.stdout.toString()).toMatch(/^RAFS filesystem metadata is valid, referenced data blobs: \n\t 0: my-blob, /);
  });
});

describe('create: same input, same flags, same bytes', () => {
  const cases: Array<{ name: string; args: (out: string) => string[]; files: (out: string, id: string) => string[] }> = [
    { name: 'default (zstd)', args: (o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob')], files: (o) => [join(o, 'boot'), join(o, 'blob')] },
    { name: '--blob-inline-meta --features blob-toc', args: (o) => ['-b', join(o, 'blob'), '--blob-inline-meta', '--features', 'blob-toc'], files: (o) => [join(o, 'blob')] },
    {
      name: '--blob-cache-dir',
      args: (o) => ['-B', join(o, 'boot'), '--blob-cache-dir', o],
      files: (o, id) => [join(o, 'boot'), join(o, `${id}.blob.data`), join(o, `${id}.blob.meta`)],
    },
  ];
  for (const c of cases) {
    it(`${c.name}: two builds are byte-identical`, async (ctx) => {
      needTree(ctx);
      const builds: Array<{ id: string; files: Buffer[]; names: string[] }> = [];
      for (let i = 0; i < 2; i++) {
        const out = await outDir('repeat');
        const r = await nydusImageOk(['create', ...c.args(out), src]);
        const id = loggedBlobId(r.stderr);
        const files = c.files(out, id);
        builds.push({ id, files: await Promise.all(files.map((f) => readFile(f))), names: (await readdir(out)).sort() });
      }
      const [a, b] = builds as [(typeof builds)[0], (typeof builds)[0]];
      expect(b.id).toBe(a.id);
      expect(b.names).toEqual(a.names);
      a.files.forEach((f, i) => {
        expect(f.length).toBeGreaterThan(0);
        expect(sha256(b.files[i]!)).toBe(sha256(f));
      });
    });
  }

  it('a cp -a copy at another path, and one compression thread instead of many, change no byte', async (ctx) => {
    needTree(ctx);
    const copy = join(work, 'copy');
    await runOk('cp', ['-a', src, copy]);
    const outs: Buffer[][] = [];
    for (const [tree, extra] of [[src, []], [copy, []], [src, ['--threads', '1']]] as const) {
      const out = await outDir('repeat-copy');
      await nydusImageOk(['create', '-B', join(out, 'boot'), '-b', join(out, 'blob'), ...extra, tree]);
      outs.push([await readFile(join(out, 'boot')), await readFile(join(out, 'blob'))]);
    }
    for (const o of outs.slice(1)) {
      expect(sha256(o[0]!)).toBe(sha256(outs[0]![0]!));
      expect(sha256(o[1]!)).toBe(sha256(outs[0]![1]!));
    }
  });

  it('--blob-cache-dir names its files with the id a --compressor none build prints', async (ctx) => {
    needTree(ctx);
    const cache = await outDir('cache-id');
    const none = await outDir('none-id');
    const a = loggedBlobId((await nydusImageOk(['create', '-B', join(cache, 'boot'), '--blob-cache-dir', cache, src])).stderr);
    const b = loggedBlobId((await nydusImageOk(['create', '-B', join(none, 'boot'), '-b', join(none, 'blob'), '--compressor', 'none', src])).stderr);
    expect(a).toBe(b);
  });
});

describe('create -b FIFO', () => {
  /** Builds into a FIFO that `cat FIFO` (a child process) copies to a file; returns that file's bytes. */
  async function buildIntoFifo(out: string, args: (blob: string) => string[]): Promise<{ blob: Buffer; stderr: Buffer }> {
    const fifo = join(out, 'fifo');
    await mknod(fifo, 'fifo', 0o600);
    const copied = join(out, 'from-fifo');
    const fd = openSync(copied, 'w');
    const cat = spawn('cat', [fifo], { stdio: ['ignore', fd, 'pipe'] });
    closeSync(fd);
    const catDone = new Promise<number | null>((resolve, reject) => {
      cat.on('error', reject);
      cat.on('close', (code) => resolve(code));
    });
    try {
      const r = await nydusImageOk(['create', ...args(fifo), src]);
      expect(await catDone).toBe(0);
      // A FIFO is written in place: never replaced by a regular file.
      expect(statSync(fifo).isFIFO()).toBe(true);
      return { blob: await readFile(copied), stderr: r.stderr };
    } finally {
      if (cat.exitCode === null && cat.signalCode === null) cat.kill('SIGKILL');
    }
  }

  it('gets the same blob, and the same bootstrap, as a regular file', async (ctx) => {
    needTree(ctx);
    const a = await outDir('fifo');
    const b = await outDir('fifo-file');
    const viaFifo = await buildIntoFifo(a, (blob) => ['-B', join(a, 'boot'), '-b', blob]);
    const r = await nydusImageOk(['create', '-B', join(b, 'boot'), '-b', join(b, 'blob'), src]);
    const file = await readFile(join(b, 'blob'));
    expect(viaFifo.blob.length).toBe(file.length);
    expect(sha256(viaFifo.blob)).toBe(sha256(file));
    expect(loggedBlobId(viaFifo.stderr)).toBe(loggedBlobId(r.stderr));
    expect(sha256(await readFile(join(a, 'boot')))).toBe(sha256(await readFile(join(b, 'boot'))));
  });

  it('with --blob-inline-meta --features blob-toc gets the same blob as a regular file', async (ctx) => {
    needTree(ctx);
    const a = await outDir('fifo-inline');
    const b = await outDir('fifo-inline-file');
    const flags = ['--blob-inline-meta', '--features', 'blob-toc'];
    const viaFifo = await buildIntoFifo(a, (blob) => ['-b', blob, ...flags]);
    await nydusImageOk(['create', '-b', join(b, 'blob'), ...flags, src]);
    const file = await readFile(join(b, 'blob'));
    expect(viaFifo.blob.length).toBe(file.length);
    expect(sha256(viaFifo.blob)).toBe(sha256(file));
    expect(walkSections(viaFifo.blob).map((s) => s.name)).toEqual(['image.blob', 'blob.meta', 'blob.digest', 'image.boot', 'rafs.blob.toc']);
  });
});

describe('create --output-json and the log lines', () => {
  const KEYS = ['version', 'bootstrap', 'blobs', 'external_bootstrap', 'external_blobs', 'trace', 'fs_version', 'compressor'];
  const STAMP = String.raw`\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} [+-]\d\d:\d\d\]`;

  for (const v of [
    { name: 'zstd', flags: [] as string[], compressor: 'zstd' },
    { name: 'lz4_block', flags: ['--compressor', 'lz4_block'], compressor: 'lz4_block' },
    { name: 'blob-cache-dir', flags: [] as string[], compressor: 'none' },
  ]) {
    it(`${v.name}: upstream's keys in order, pretty-printed, no trailing newline; blobs as logged`, async () => {
      const out = await outDir('json');
      const boot = join(out, 'boot');
      const json = join(out, 'out.json');
      const cache = v.name === 'blob-cache-dir';
      const blobArgs = cache ? ['--blob-cache-dir', out] : ['-b', join(out, 'blob'), ...v.flags];
      const r = await nydusImageOk(['create', '-B', boot, ...blobArgs, '-J', json, plain]);
      const text = await readFile(json, 'utf8');
      const data = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(data)).toEqual(KEYS);
      expect(text).toBe(JSON.stringify(data, null, 2));
      expect(text.endsWith('\n')).toBe(false);
      expect(data.bootstrap).toBe(boot);
      expect(data.blobs).toEqual(loggedBlobIds(r.stderr));
      expect(data.blobs).toHaveLength(1);
      expect(data.fs_version).toBe('6');
      expect(data.compressor).toBe(v.compressor);
      expect(typeof data.version).toBe('string');
      expect(typeof data.external_bootstrap).toBe('string');
      expect(data.external_blobs).toEqual([]);
      const trace = data.trace as { consumed_time: Record<string, number>; registered_events: Record<string, unknown> };
      expect(Object.keys(trace)).toEqual(['consumed_time', 'registered_events']);
      expect(Object.keys(trace.consumed_time)).toEqual([...Object.keys(trace.consumed_time)].sort());
      expect(Object.keys(trace.registered_events)).toEqual([...Object.keys(trace.registered_events)].sort());
      expect(trace.consumed_time).toHaveProperty('total_build');
      expect(trace.registered_events).toMatchObject({ euid: '0', egid: '0' });
    });
  }

  it('logs the result at info on stderr: path, blob size in hex, blob ids; nothing at --log-level warn', async () => {
    const out = await outDir('log');
    const boot = join(out, 'boot');
    const blob = join(out, 'blob');
    const r = await nydusImageOk(['create', '-B', boot, '-b', blob, plain]);
    expect(r.stdout.toString()).toBe('');
    const err = r.stderr.toString();
    expect(err).toMatch(new RegExp(`^${STAMP} INFO successfully built RAFS filesystem: $`, 'm'));
    expect(err).toMatch(new RegExp(`^meta blob path: ${boot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    const size = /^data blob size: 0x([0-9a-f]+)$/m.exec(err);
    expect(size).not.toBeNull();
    expect(parseInt(size![1]!, 16)).toBe(statSync(blob).size);
    expect(loggedBlobIds(err)).toHaveLength(1);

    const quiet = await outDir('log-warn');
    const q = await nydusImageOk(['create', '-B', join(quiet, 'boot'), '-b', join(quiet, 'blob'), '--log-level', 'warn', '-J', join(quiet, 'j.json'), plain]);
    const qerr = q.stderr.toString();
    expect(qerr).not.toMatch(/successfully built RAFS filesystem/);
    expect(qerr).not.toMatch(/meta blob path:/);
    expect(qerr).not.toMatch(/data blob size:/);
    expect(qerr).not.toMatch(/data blobs:/);
    // The build itself still happened, the same as at info level.
    expect((JSON.parse(await readFile(join(quiet, 'j.json'), 'utf8')) as { blobs: string[] }).blobs).toEqual(loggedBlobIds(err));
  });

  it('inline meta logs "meta blob path: <none>"', async () => {
    const out = await outDir('log-inline');
    const r = await nydusImageOk(['create', '-b', join(out, 'blob'), '--blob-inline-meta', plain]);
    expect(r.stderr.toString()).toMatch(/^meta blob path: <none>$/m);
  });
});

describe('create: bad input gives one line naming the cause, a non-zero exit and no output', () => {
  /** Runs create with outputs in a fresh empty directory and checks the failure's shape. */
  async function expectFailure(args: (out: string) => string[], cause: RegExp, outside: string[] = []): Promise<string> {
    const out = await outDir('bad');
    const r = await nydusImage(['create', ...args(out)]);
    const err = r.stderr.toString();
    expect(r.code, err).not.toBe(0);
    expect(r.code).not.toBeNull();
    const lines = err.split('\n').filter((l) => l.trim() !== '');
    expect(lines, err).toHaveLength(1);
    expect(lines[0]).toMatch(/^Error: /);
    expect(lines[0]).toMatch(cause);
    expect(err).not.toMatch(/^\s+at /m);
    expect(r.stdout.toString()).toBe('');
    // Nothing under the final names, and no temporary files either.
    expect(readdirSync(out), `left in the output directory: ${readdirSync(out).join(', ')}`).toEqual([]);
    for (const p of outside) expect(existsSync(p), p).toBe(false);
    return lines[0]!;
  }

  it('a source directory that does not exist', async () => {
    const missing = join(work, 'no-such-source');
    const line = await expectFailure((o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob'), missing], /no such file or directory/i);
    expect(line).toContain(missing);
  });

  it('a source that is a file, not a directory', async () => {
    const file = join(plain, 'sub', 'small.txt');
    const line = await expectFailure((o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob'), file], /not a directory/i);
    expect(line).toContain(file);
  });

  it('a file inside the source that cannot be read, even by root (found after chunks were written)', async (ctx) => {
    // Root reads anything DAC forbids, so the unreadable file is a write-only sysfs attribute
    // bind-mounted over a file of the source: it lstat()s as a 4096-byte regular file, and
    // kernfs refuses to open it for reading (EACCES) whoever asks. It is only ever opened O_RDONLY.
    if (!isRoot) return skipLoudly(ctx, 'a bind mount needs root');
    const target = findWriteOnlySysfsFile();
    if (!target) return skipLoudly(ctx, 'no write-only sysfs attribute found to bind-mount');
    const tree = join(work, 'unreadable');
    await mkdir(tree);
    await writeFile(join(tree, 'a-data.bin'), prng(2, 3 * 1024 * 1024));
    const bad = join(tree, 'z-unreadable');
    await writeFile(bad, '');
    await runOk('mount', ['--bind', target, bad]);
    try {
      const line = await expectFailure((o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob'), tree], /permission denied/i);
      expect(line).toContain('z-unreadable');
      const viaDir = await expectFailure((o) => ['-D', o, tree], /permission denied/i);
      expect(viaDir).toContain('z-unreadable');
      const viaCache = await expectFailure((o) => ['-B', join(o, 'boot'), '--blob-cache-dir', o, tree], /permission denied/i);
      expect(viaCache).toContain('z-unreadable');
    } finally {
      await run('umount', [bad]);
    }
  });

  for (const [value, why] of [
    ['0x3000', 'not a power of two'],
    ['0x2000000', 'above 16 MiB'],
    ['0x800', 'below 4 KiB'],
    ['12288', 'decimal, not a power of two'],
  ] as const) {
    it(`--chunk-size ${value} (${why})`, async () => {
      const line = await expectFailure((o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob'), '--chunk-size', value, plain], /chunk size/i);
      expect(line).toMatch(new RegExp(`${value}|0x${Number(value).toString(16)}`, 'i'));
      expect(line).toMatch(/power of two/);
    });
  }

  it('-B in a directory that does not exist', async () => {
    const missing = join(work, 'no-such-dir', 'boot');
    const line = await expectFailure((o) => ['-B', missing, '-b', join(o, 'blob'), plain], /does not exist|no such file/i, [missing]);
    expect(line).toContain(missing);
  });

  it('-b in a directory that does not exist', async () => {
    const missing = join(work, 'no-such-dir', 'blob');
    const line = await expectFailure((o) => ['-B', join(o, 'boot'), '-b', missing, plain], /does not exist|no such file/i, [missing]);
    expect(line).toContain(missing);
  });

  it('-D and --blob-cache-dir that do not exist', async () => {
    const missing = join(work, 'no-such-blob-dir');
    expect(await expectFailure(() => ['-D', missing, plain], /does not exist|no such file/i, [missing])).toContain(missing);
    expect(await expectFailure((o) => ['-B', join(o, 'boot'), '--blob-cache-dir', missing, plain], /does not exist|no such file/i, [missing])).toContain(missing);
  });

  it('--fs-version 5 with what only RAFS v6 has is refused clearly', async () => {
    await expectFailure((o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob'), '--fs-version', '5', '--features', 'blob-toc', plain], /blob-toc.*--fs-version 5/);
    await expectFailure((o) => ['-B', join(o, 'boot'), '-v', '5', '--blob-cache-dir', o, plain], /--blob-cache-dir is not supported with --fs-version 5/);
    await expectFailure((o) => ['-B', join(o, 'boot'), '-D', o, '-v', '5', '-t', 'tar-tarfs', plain], /tar-tarfs.*only RAFS v6/);
  });

  it('--batch-size outside upstream\'s rule gives one line each (0, or a power of two from 0x1000 to the chunk size)', async () => {
    const run = (extra: string[]) => expectFailure((o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob'), ...extra, plain], /batch size/);
    expect(await run(['--batch-size', '0x1001'])).toMatch(/invalid batch size 0x1001: must be 0 or a power of two from 0x1000 to 0x1000000/);
    expect(await run(['--batch-size', '0x800'])).toMatch(/invalid batch size 0x800/);
    expect(await run(['--batch-size', '0x2000000', '--chunk-size', '0x1000000'])).toMatch(/invalid batch size 0x2000000/);
    expect(await run(['--batch-size', '0x20000', '--chunk-size', '0x10000'])).toMatch(/batch size 0x20000 is bigger than chunk size 0x10000/);
    await expectFailure((o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob'), '--batch-size', 'lots', plain], /--batch-size/);
    await expectFailure((o) => ['-B', join(o, 'boot'), '-t', 'tar-tarfs', '-D', o, '--batch-size', '0x1000', join(work, 'never.tar')], /--batch-size cannot be used with conversion type tar-tarfs/);
  });

  it('--encrypt with tar-tarfs or --blob-cache-dir is refused in one line', async () => {
    await expectFailure((o) => ['-B', join(o, 'boot'), '-t', 'tar-tarfs', '-D', o, '--encrypt', join(work, 'never.tar')], /conversion type 'tar-tarfs' conflicts with '--encrypt'/);
    await expectFailure((o) => ['-B', join(o, 'boot'), '--blob-cache-dir', o, '-E', plain], /--encrypt cannot be used with --blob-cache-dir/);
  });

  it('--blob-cache-dir with --compressor, and -B with --blob-inline-meta, are refused', async () => {
    await expectFailure((o) => ['-B', join(o, 'boot'), '--blob-cache-dir', o, '--compressor', 'zstd', plain], /--blob-cache-dir.*--compressor|--compressor.*--blob-cache-dir/);
    await expectFailure((o) => ['-B', join(o, 'boot'), '-b', join(o, 'blob'), '--blob-inline-meta', plain], /--blob-inline-meta/);
  });
});

/** A sysfs attribute with mode 0200 that really refuses O_RDONLY, or undefined. */
function findWriteOnlySysfsFile(): string | undefined {
  let found: string[] = [];
  try {
    found = execFileSync('find', ['/sys', '-maxdepth', '5', '-type', 'f', '-perm', '0200'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((l) => l !== '');
  } catch (e) {
    // find exits non-zero on unreadable corners of /sys; what it printed is still good.
    found = String((e as { stdout?: string }).stdout ?? '').split('\n').filter((l) => l !== '');
  }
  // Prefer attributes whose name says what a write would do is harmless; we only ever read.
  const preferred = ['/sys/fs/xfs/stats/stats_clear', '/sys/bus/pci/rescan'];
  for (const c of [...preferred, ...found.sort()]) {
    try {
      const st = statSync(c);
      if (!st.isFile() || (st.mode & 0o777) !== 0o200) continue;
      closeSync(openSync(c, 'r'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') return c;
    }
  }
  return undefined;
}
