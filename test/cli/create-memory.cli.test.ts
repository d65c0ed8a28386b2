// Memory is bounded (issue 2): a build's peak RSS must not grow with the input. The same shape
// of tree at 64 MiB and at 640 MiB is built with every compressor, and the larger input may
// cost only a small, fixed amount more. lz4_block once kept a buffer per chunk alive in the
// workers (peak RSS grew by about the blob's size); this is the test that says so.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk } from '../helpers/tools.js';
import { BIN, REPO } from './cli-runner.js';

const MiB = 2 ** 20;
const FILE = 16 * MiB;
let work = '';

/** count files of 16 MiB: random bytes with every other 4 KiB block zeroed (compresses to about half). */
async function makeTree(dir: string, count: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const buf = Buffer.alloc(FILE);
  for (let i = 0; i < count; i++) {
    randomFillSync(buf);
    for (let off = 0; off < FILE; off += 8192) buf.fill(0, off, off + 4096);
    const fd = openSync(join(dir, `file-${i}`), 'w');
    writeSync(fd, buf);
    closeSync(fd);
  }
}

async function peakRss(compressor: string, tree: string, type = 'dir-rafs'): Promise<number> {
  const out = await mkdtemp(join(work, 'out-'));
  try {
    const r = await run('/usr/bin/time', [
      '-f', 'maxrss=%M', process.execPath, BIN, 'create', '-t', type, '--compressor', compressor,
      '-B', join(out, 'boot'), '-b', join(out, 'blob'), '--log-level', 'warn', tree,
    ], { cwd: REPO });
    expect(r.code, r.stderr.toString()).toBe(0);
    // The blob really holds the data (nothing was skipped).
    expect((await stat(join(out, 'blob'))).size).toBeGreaterThan(0);
    return Number(/maxrss=(\d+)/.exec(r.stderr.toString())![1]) * 1024;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-memory-'));
  await makeTree(join(work, 'small'), 4);
  await makeTree(join(work, 'big'), 40);
  for (const t of ['small', 'big']) await runOk('tar', ['-cf', join(work, `${t}.tar`), '-C', join(work, t), '.']);
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('create keeps peak RSS flat as the input grows', () => {
  for (const compressor of ['zstd', 'lz4_block', 'none']) {
    it(`${compressor}: 640 MiB of input costs at most 64 MiB more than 64 MiB of input`, async () => {
      const small = await peakRss(compressor, join(work, 'small'));
      const big = await peakRss(compressor, join(work, 'big'));
      process.stderr.write(`create --compressor ${compressor}: peak RSS ${(small / MiB).toFixed(0)} MiB for 64 MiB, ${(big / MiB).toFixed(0)} MiB for 640 MiB\n`);
      expect(big - small).toBeLessThan(64 * MiB);
    }, 300_000);
  }

  it('tar-rafs (zstd): the same from tars of the two trees, read in one pass, never whole', async () => {
    const small = await peakRss('zstd', join(work, 'small.tar'), 'tar-rafs');
    const big = await peakRss('zstd', join(work, 'big.tar'), 'tar-rafs');
    process.stderr.write(`create -t tar-rafs: peak RSS ${(small / MiB).toFixed(0)} MiB for 64 MiB, ${(big / MiB).toFixed(0)} MiB for 640 MiB\n`);
    expect(big - small).toBeLessThan(64 * MiB);
  }, 300_000);
});
