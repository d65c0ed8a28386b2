// The dm-verity tree judged by veritysetup: for the sizes where levels start and blocks fill
// (tar-merge-export.md §7.2), our root and hash area must equal what `veritysetup format`
// writes, and `veritysetup verify` must accept our hash area placed after the data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIGESTS_PER_BLOCK, HASH_BLOCK_SIZE, VerityTree, verityLayout, verityOf, verityOptionsLine } from '../../src/builder/verity.js';
import { hasTool, run, runOk } from '../helpers/tools.js';
import { skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { prng } from '../helpers/tree.js';

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-verity-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function needVeritysetup(ctx: SkipContext): void {
  if (!hasTool('veritysetup')) skipLoudly(ctx, 'veritysetup is not on PATH');
}

const opts = (B: number, N: number) => ['--no-superblock', '--format=1', '-s', '', '--hash=sha256', `--data-block-size=${B}`, '--hash-block-size=4096', '--data-blocks', String(N)];

/** `veritysetup format` into a separate hash file: its root and the hash file's bytes. */
async function veritysetupFormat(data: string, B: number, N: number): Promise<{ root: string; hash: Buffer }> {
  const hashFile = `${data}.hash`;
  const r = await runOk('veritysetup', ['format', ...opts(B, N), data, hashFile]);
  const m = /^Root hash:\s+([0-9a-f]{64})$/m.exec(r.stdout.toString());
  if (!m) throw new Error(`no root hash in:\n${r.stdout.toString()}`);
  return { root: m[1]!, hash: await readFile(hashFile).catch(() => Buffer.alloc(0)) };
}

// 512-byte blocks (tarfs): 128 digests fill one hash block, 16384 fill a level-2 block.
const CASES: Array<[number, number]> = [
  [1, 512], [2, 512], [128, 512], [129, 512], [300, 512], [16384, 512], [16385, 512],
  [1, 4096], [2, 4096], [128, 4096], [129, 4096], [300, 4096],
];

describe('verityLayout', () => {
  it('counts levels bottom-up and stores the top level first', () => {
    expect(verityLayout(1, 512)).toMatchObject({ levelBlocks: [], hashSize: 0, hashOffset: 4096 });
    expect(verityLayout(128, 512)).toMatchObject({ levelBlocks: [1], levelOffsets: [0], hashSize: 4096, hashOffset: 65536 });
    expect(verityLayout(129, 512)).toMatchObject({ levelBlocks: [2, 1], levelOffsets: [4096, 0], hashSize: 12288 });
    expect(verityLayout(16385, 512)).toMatchObject({ levelBlocks: [129, 2, 1], levelOffsets: [3 * 4096, 4096, 0] });
    // N·B not a multiple of 4096: the hash area starts at the next 4 KiB boundary.
    expect(verityLayout(300, 512).hashOffset).toBe(155_648);
    expect(verityLayout(3, 4096).hashOffset).toBe(12_288);
  });

  it('prints upstream\'s options line', () => {
    const l = verityLayout(300, 512);
    expect(verityOptionsLine(l, 'ab'.repeat(32))).toBe(
      `dm-verity options: --no-superblock --format=1 -s "" --hash=sha256 --data-block-size=512 --hash-block-size=4096 --data-blocks 300 --hash-offset 155648 ${'ab'.repeat(32)}`,
    );
  });
});

describe('VerityTree', () => {
  it('gives the same tree whatever the slicing, and zeros() equals zero bytes', () => {
    const B = 512;
    const N = 16385;
    const data = prng(77, N * B);
    data.fill(0, 4096 * 3 + 100, 4096 * 40); // a zero run not on block boundaries
    const whole = verityOf(data, B);
    const area = Buffer.alloc(whole.layout.hashSize);
    const seen = new Set<number>();
    const tree = new VerityTree(N, B, (off, block) => {
      expect(seen.has(off)).toBe(false);
      seen.add(off);
      block.copy(area, off);
    });
    const sizes = [1, 511, 513, 4097, 3, 65536, 700];
    let off = 0;
    for (let i = 0; off < data.length; i++) {
      const n = Math.min(sizes[i % sizes.length]!, data.length - off);
      const slice = data.subarray(off, off + n);
      if (slice.every((b) => b === 0)) tree.zeros(n);
      else tree.update(slice);
      off += n;
    }
    expect(tree.digest().equals(whole.root)).toBe(true);
    expect(area.equals(whole.hashArea)).toBe(true);
    expect(seen.size).toBe(whole.layout.hashSize / HASH_BLOCK_SIZE);
  });

  it('leaves unused digest slots zero (not upstream\'s sha256 of a zero page)', () => {
    const { hashArea, layout } = verityOf(prng(5, 129 * 512), 512);
    const leafLast = hashArea.subarray(layout.levelOffsets[0]! + HASH_BLOCK_SIZE, layout.levelOffsets[0]! + 2 * HASH_BLOCK_SIZE);
    expect(leafLast.subarray(32).every((b) => b === 0)).toBe(true);
    expect(leafLast.subarray(0, 32).every((b) => b === 0)).toBe(false);
    expect(DIGESTS_PER_BLOCK).toBe(128);
  });

  it('refuses too much or too little data', () => {
    const t = new VerityTree(2, 512, () => {});
    t.update(Buffer.alloc(512));
    expect(() => t.digest()).toThrow(/expected 2 blocks/);
    const u = new VerityTree(1, 512, () => {});
    expect(() => u.update(Buffer.alloc(1024))).toThrow(/more than 1/);
  });
});

describe('VerityTree against veritysetup', () => {
  for (const [N, B] of CASES) {
    it(`N = ${N}, B = ${B}: same root and hash area as \`veritysetup format\`; verify accepts it at --hash-offset`, async (ctx) => {
      needVeritysetup(ctx);
      const data = prng(N * 7 + B, N * B);
      const ours = verityOf(data, B);
      const dataFile = join(work, `data-${N}-${B}`);
      await writeFile(dataFile, data);
      const theirs = await veritysetupFormat(dataFile, B, N);
      expect(ours.root.toString('hex')).toBe(theirs.root);
      expect(ours.hashArea.equals(theirs.hash)).toBe(true);

      // Data, zeros to hash_offset, hash area: the layout export --block --verity writes.
      const disk = join(work, `disk-${N}-${B}`);
      const gap = Buffer.alloc(ours.layout.hashOffset - data.length);
      await writeFile(disk, Buffer.concat([data, gap, ours.hashArea]));
      const verify = ['verify', ...opts(B, N), '--hash-offset', String(ours.layout.hashOffset), disk, disk];
      await runOk('veritysetup', [...verify, theirs.root]);

      // One flipped data byte must fail.
      const bad = Buffer.concat([data, gap, ours.hashArea]);
      bad[Math.floor(data.length / 2)] ^= 0x01;
      await writeFile(disk, bad);
      const r = await run('veritysetup', [...verify, theirs.root]);
      expect(r.code).not.toBe(0);
    });
  }
});
