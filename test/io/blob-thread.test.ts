// The blob's writer thread (issue 14): it hashes and writes the blob off the main thread, in the
// order given; lent buffers come back whole for reuse; a failed write is one user error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobThread } from '../../src/io/blob-thread.js';
import { NydusError } from '../../src/errors.js';
import { create } from '../../src/builder/create.js';

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-blob-thread-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('blob writer thread', () => {
  it('writes and hashes in order, skips the hash where told, and lends buffers back whole', async () => {
    const file = join(work, 'out');
    const fd = openSync(file, 'w');
    const t = new BlobThread(fd, file);
    const parts = [randomBytes(3 << 20), randomBytes(100), randomBytes(1 << 20)];
    const lent = new Uint8Array(4 << 20);
    lent.set(parts[0], 512);
    const back: Uint8Array[] = [];
    t.write(lent.subarray(512, 512 + parts[0].length), true, (b) => back.push(b));
    expect(lent.byteLength).toBe(0); // moved to the thread
    t.write(parts[1], false);
    const mid = await t.digest(false);
    t.write(parts[2], true);
    const final = await t.digest(true);
    await t.close();
    closeSync(fd);
    expect(readFileSync(file).equals(Buffer.concat(parts))).toBe(true);
    expect(mid).toEqual(createHash('sha256').update(parts[0]).digest());
    expect(final).toEqual(createHash('sha256').update(parts[0]).update(parts[2]).digest());
    expect(back).toHaveLength(1);
    expect(back[0].byteLength).toBe(4 << 20);
    expect(Buffer.from(back[0].subarray(512, 512 + parts[0].length)).equals(parts[0])).toBe(true);
  });

  it('a failed write becomes an output error naming the output, on drain and on digest', async () => {
    const fd = openSync('/dev/full', 'w');
    const t = new BlobThread(fd, 'the-blob');
    t.write(randomBytes(1 << 20), true);
    const err = await t.drain(0).then(() => undefined, (e) => e);
    expect(err).toBeInstanceOf(NydusError);
    expect((err as NydusError).message).toMatch(/the-blob.*no space left on device|no space left on device.*the-blob/);
    await expect(t.digest(true)).rejects.toBeInstanceOf(NydusError);
    expect(() => t.write(new Uint8Array(1), true)).toThrow(NydusError);
    await t.close();
    closeSync(fd);
  });

  it('create with workers, blob to /dev/full: one output error, no bootstrap left', async () => {
    const boot = join(work, 'boot');
    const err = await create({ source: join(__dirname), bootstrap: boot, blob: '/dev/full', threads: 2 }).then(() => undefined, (e) => e);
    expect(err).toBeInstanceOf(NydusError);
    expect((err as NydusError).message).toMatch(/no space left on device/);
    expect(() => readFileSync(boot)).toThrow();
  });
});
