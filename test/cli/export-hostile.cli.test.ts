// export --block on bootstraps patched the way an attacker would: a blob id that is a path must
// never make us read outside -D, and a blob that claims more than its chunks and file can back
// must not make us write gigabytes of zeros. Each refusal is one line, exit 1, no disk left.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loggedBlobId, nydusImage, nydusImageOk } from './cli-runner.js';

let work = '';
let blobs = '';
let boot = '';

const EXT_SB = 1152;
const DEVICE_SLOTS = 11 * 128;

/** Offset of blob-table entry 0 (the ext superblock's blob_table_offset). */
const blobTableAt = (b: Buffer) => Number(b.readBigUInt64LE(EXT_SB + 8));

/** Writes `id` as the 64-byte NUL-padded id of blob-table entry 0 and device slot 0. */
function patchBlobId(b: Buffer, id: string): Buffer {
  const out = Buffer.from(b);
  for (const at of [blobTableAt(out), DEVICE_SLOTS]) {
    out.fill(0, at, at + 64);
    out.write(id, at, 'latin1');
  }
  return out;
}

function oneErrorLine(stderr: Buffer): string {
  const lines = stderr.toString().trim().split('\n');
  expect(lines, stderr.toString()).toHaveLength(1);
  return lines[0]!;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-export-hostile-'));
  const src = join(work, 'src');
  await mkdir(join(src, 'd'), { recursive: true });
  await writeFile(join(src, 'a'), Buffer.alloc(3 * 4096 + 17, 'a'));
  await writeFile(join(src, 'd', 'b'), 'hello\n');
  blobs = join(work, 'blobs');
  await mkdir(blobs);
  boot = join(work, 'boot');
  const r = await nydusImageOk(['create', '-t', 'dir-rafs', '-B', boot, '-D', blobs, src]);
  loggedBlobId(r.stderr);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('export --block of a hostile bootstrap', () => {
  it('exports the unpatched image (the baseline the patches start from)', async () => {
    await nydusImageOk(['export', '--block', '-B', boot, '-D', blobs, '-O', join(work, 'ok.disk')]);
    await rm(join(work, 'ok.disk'));
  });

  it('refuses a blob id that is a path: one line, nothing read from outside -D, no disk', async () => {
    // A host file next to -D that a naive join(blobDir, id) would copy into the disk.
    const secret = Buffer.alloc(64 * 1024, 'S');
    await writeFile(join(work, 'secret'), secret);
    for (const id of ['../secret', '/etc/passwd', '..']) {
      const patched = join(work, 'patched-id.boot');
      await writeFile(patched, patchBlobId(await readFile(boot), id));
      const out = join(work, 'out-id.disk');
      const r = await nydusImage(['export', '--block', '-B', patched, '-D', blobs, '-O', out]);
      expect(r.code, r.stderr.toString()).toBe(1);
      expect(oneErrorLine(r.stderr)).toMatch(/blob id/);
      expect(await readdir(work)).not.toContain('out-id.disk');
      expect((await readdir(work)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    }
  });

  it('refuses a blob that claims 64 GiB over a small file: one line, exit 1, fast, no disk', async () => {
    const b = Buffer.from(await readFile(boot));
    const GiB64 = 64 * 1024 ** 3;
    b.writeBigUInt64LE(BigInt(GiB64), blobTableAt(b) + 96);
    b.writeUInt32LE(GiB64 / 4096, DEVICE_SLOTS + 64);
    const patched = join(work, 'patched-size.boot');
    await writeFile(patched, b);
    const out = join(work, 'out-size.disk');
    const started = Date.now();
    // On the code before the fix this writes 64 GiB: killed well before that.
    const r = await nydusImage(['export', '--block', '-B', patched, '-D', blobs, '-O', out], { timeoutMs: 8000 });
    expect(r.code, r.stderr.toString()).toBe(1);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(oneErrorLine(r.stderr)).toMatch(/uncompressed_size.*cannot back it/);
    expect((await readdir(work)).filter((n) => n.startsWith('out-size') || n.includes('out-size.disk'))).toEqual([]);
  });

  it('refuses a blob mapped far past the bootstrap (gigabytes of zeros before it)', async () => {
    const b = Buffer.from(await readFile(boot));
    b.writeUInt32LE(4 * 1024 * 1024, DEVICE_SLOTS + 68); // mapped_blkaddr: 16 GiB in
    const patched = join(work, 'patched-map.boot');
    await writeFile(patched, b);
    const out = join(work, 'out-map.disk');
    const r = await nydusImage(['export', '--block', '-B', patched, '-D', blobs, '-O', out], { timeoutMs: 8000 });
    expect(r.code, r.stderr.toString()).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/BLOB_MAP_ALIGN_MAX/);
    expect((await readdir(work)).filter((n) => n.includes('out-map'))).toEqual([]);
  });
});
