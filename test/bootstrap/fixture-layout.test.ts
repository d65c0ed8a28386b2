// Rebuilding the upstream fixture's tree must reproduce the fixture bootstrap byte for byte,
// except where the fixture's builder (Feb 2023) and HEAD differ or zstd output differs
// (rafs-v6.md §9 trap 12): flags' ENCRYPTION_NONE bit, mapped_blkaddr alignment, the root's
// i_ino, and everything that depends on compressed sizes (blob id, sizes, offsets, TOC digest).
import { describe, expect, it } from 'vitest';
import { UPSTREAM } from '../helpers/upstream.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { openImage } from '../../src/read/open.js';
import { BlobReader } from '../../src/read/data.js';
import { create } from '../../src/builder/create.js';

const fixtures = UPSTREAM;

describe('upstream fixture layout', () => {
  it('our build of the same tree lays out every inode, dirent, index and chunk-table entry as upstream', async () => {
    const fixtureBoot = fs.readFileSync(path.join(fixtures, 'bootstrap/rafs-v6-2.2.boot'));
    const image = openImage(path.join(fixtures, 'bootstrap/rafs-v6-2.2.boot'));
    const reader = new BlobReader(image, { blobDir: path.join(fixtures, 'blobs') });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fixture-'));
    try {
      const src = path.join(dir, 'src');
      fs.mkdirSync(src, { mode: 0o755 });
      fs.chmodSync(src, image.root.mode & 0o7777);
      for (const n of image.root.children!) {
        const p = path.join(src, n.name.toString());
        fs.writeFileSync(p, Buffer.concat([...reader.readFile(n, true)]));
        fs.chmodSync(p, n.mode & 0o7777);
        fs.chownSync(p, n.uid, n.gid);
        execFileSync('touch', ['-d', `@${n.mtime}.${String(n.mtimeNsec).padStart(9, '0')}`, p]);
      }
      reader.close();
      const boot = path.join(dir, 'boot');
      await create({ source: src, bootstrap: boot, blob: path.join(dir, 'blob'), blobToc: true, threads: 0 });
      const ours = fs.readFileSync(boot);
      expect(ours.length).toBe(fixtureBoot.length);

      // Mask the bytes that legitimately differ, then demand equality of everything else.
      const mask = (b: Buffer) => {
        const m = Buffer.from(b);
        m.writeUInt32LE(m.readUInt32LE(1152) & ~0x0100_0000, 1152); // ENCRYPTION_NONE (HEAD only)
        m.fill(0, 1408, 1408 + 64); // device slot tag = blob id (zstd-dependent)
        m.writeUInt32LE(0, 1408 + 68); // mapped_blkaddr: 2 MiB alignment then, 512 KiB now
        m.fill(0, 4096, 4096 + 64); // blob table: blob id
        m.fill(0, 4096 + 88, 4096 + 96); // compressed_size
        m.fill(0, 4096 + 112, 4096 + 120); // ci_offset: after the compressed chunks
        m.fill(0, 4096 + 136, 4096 + 168); // TOC digest
        m.writeUInt32LE(0, 0x3000 + 20); // root i_ino: 0 in the fixture's builder, 1 in HEAD
        for (let e = 0x4000; e < 0x4000 + 160; e += 80) {
          m.writeUInt32LE(0, e + 40); // compressed_size
          m.fill(0, e + 48, e + 56); // compressed_offset
        }
        return m;
      };
      const a = mask(ours);
      const b = mask(fixtureBoot);
      const diffs: string[] = [];
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diffs.push(`0x${i.toString(16)}: ours ${a[i]} upstream ${b[i]}`);
      expect(diffs.slice(0, 20)).toEqual([]);
      // The unmasked fields we expect to differ do differ only as explained.
      expect(ours.readUInt32LE(1152)).toBe(0x194 | 0x0100_0000);
      expect(ours.readUInt32LE(1408 + 68)).toBe(128);
      expect(ours.readUInt32LE(0x3000 + 20)).toBe(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
