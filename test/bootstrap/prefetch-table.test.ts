// The prefetch table sits after the blob table, and there is none without blobs (rafs-v6.md §2):
// a build with no data has its inodes from 4096, where the table would go. A tree of empty files
// built with a prefetch list (as nydusify builds every layer, with "/") must keep its root inode
// whole and name no table; with data, the table holds the list.
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create } from '../../src/builder/create.js';
import { openImage } from '../../src/read/open.js';
import * as ext from '../../src/format/rafs/ext-superblock.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-prefetch-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function build(name: string, files: Record<string, string>, threads: number): Promise<Buffer> {
  const src = path.join(work, `${name}-src`);
  fs.mkdirSync(src);
  for (const [f, data] of Object.entries(files)) fs.writeFileSync(path.join(src, f), data);
  const boot = path.join(work, `${name}.boot`);
  await create({ source: src, bootstrap: boot, blob: path.join(work, `${name}.blob`), prefetch: ['/'], threads });
  return fs.readFileSync(boot);
}

describe('prefetch table', () => {
  it.for([0, 2])('none without blobs: the root inode stays whole (%i threads)', async (threads) => {
    const boot = await build(`empty-${threads}`, { empty: '' }, threads);
    const e = ext.decode(boot);
    expect([e.prefetch_table_offset, e.prefetch_table_size]).toEqual([0, 0]);
    const image = openImage(path.join(work, `empty-${threads}.boot`));
    expect(image.root.children!.map((c) => c.name.toString())).toEqual(['empty']);
  });

  it('after the blob table with a blob: the list\'s nids', async () => {
    const boot = await build('data', { a: 'some bytes\n' }, 2);
    const e = ext.decode(boot);
    expect(e.prefetch_table_size).toBe(4);
    expect(e.prefetch_table_offset).toBe(e.blob_table_offset + e.blob_table_size);
    const image = openImage(path.join(work, 'data.boot'));
    expect(image.prefetch).toEqual([image.root.ino]);
  });
});
