// tar-rafs of a tar with GNU sparse members (which upstream refuses): the image holds each file
// at its real size, holes as zeros, and it reads back byte-equal.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nydusImageOk } from './cli-runner.js';
import { runOk } from '../helpers/tools.js';
import { openImage } from '../../src/read/open.js';
import { BlobReader } from '../../src/read/data.js';
import { walkImage } from '../../src/read/check.js';

describe('tar-rafs with sparse members', () => {
  for (const format of ['gnu', 'pax']) {
    it(`builds a --sparse --format=${format} tar and reads every byte back`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparse-'));
      try {
        const src = path.join(dir, 'src');
        fs.mkdirSync(src);
        const f = path.join(src, 'holes');
        const fd = fs.openSync(f, 'w');
        fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
        fs.writeSync(fd, Buffer.alloc(5000, 7), 0, 5000, 3 * 1024 * 1024 + 11);
        fs.ftruncateSync(fd, 9 * 1024 * 1024);
        fs.closeSync(fd);
        const tar = path.join(dir, 'l.tar');
        await runOk('tar', [`--format=${format}`, '--sparse', '-C', src, '-cf', tar, '.']);
        await nydusImageOk(['create', '--log-level', 'warn', '-t', 'tar-rafs', '-B', path.join(dir, 'boot'), '-b', path.join(dir, 'blob'), tar]);
        const image = openImage(path.join(dir, 'boot'));
        const node = [...walkImage(image.root)].find(([p]) => p === '/holes')![1];
        expect(node.size).toBe(9 * 1024 * 1024);
        const reader = new BlobReader(image, { blob: path.join(dir, 'blob') });
        const got = Buffer.concat([...reader.readFile(node, true)]);
        reader.close();
        expect(got.equals(fs.readFileSync(f))).toBe(true);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
