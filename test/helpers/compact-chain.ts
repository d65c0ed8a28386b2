// The image compact is tested on (test/builder/compact.test.ts, nydusify pack --compact): a chunk
// dict and a chain of small layers, each built on the one below with the dict, whose upper layers
// delete and replace what lower ones stored, so that lower blobs lose most of their use.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import { prng } from './tree.js';

/** Sources go under `work`; blobs (named by id) into `blobDir`; bootstraps dict.boot and layer<i>.boot into `bootDir`. */
export async function buildCompactChain(o: { work: string; blobDir: string; bootDir: string; layers: number }): Promise<{ dictBoot: string; top: string }> {
  const dictDir = join(o.work, 'dict-src');
  await mkdir(join(dictDir, 'base'), { recursive: true });
  for (let i = 0; i < 8; i++) await writeFile(join(dictDir, 'base', `lib${i}`), prng(1000 + i, 40_000));
  const dictBoot = join(o.bootDir, 'dict.boot');
  await create({ source: dictDir, bootstrap: dictBoot, blobDir: o.blobDir, chunkSize: 0x10000 });
  let parent: string | undefined;
  for (let i = 0; i < o.layers; i++) {
    const dir = join(o.work, `layer${i}`);
    await mkdir(join(dir, `l${i}`), { recursive: true });
    await writeFile(join(dir, `l${i}`, 'keep'), `layer ${i} keeps this\n`.repeat(50));
    await writeFile(join(dir, `l${i}`, 'bulk'), prng(i, 60_000 + i));
    // A file the dict holds: referenced there, not stored again.
    await writeFile(join(dir, `l${i}`, 'from-dict'), prng(1000 + (i % 8), 40_000));
    // Every layer replaces /shared and deletes the layer below's bulk.
    await writeFile(join(dir, 'shared'), prng(5000 + i, 30_000));
    if (i > 0) {
      await mkdir(join(dir, `l${i - 1}`));
      await writeFile(join(dir, `l${i - 1}`, '.wh.bulk'), '');
    }
    const boot = join(o.bootDir, `layer${i}.boot`);
    await create({ source: dir, bootstrap: boot, blobDir: o.blobDir, chunkSize: 0x10000, chunkDict: `bootstrap=${dictBoot}`, ...(parent ? { parentBootstrap: parent } : {}) });
    parent = boot;
  }
  return { dictBoot, top: parent! };
}
