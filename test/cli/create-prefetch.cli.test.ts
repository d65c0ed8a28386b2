// --prefetch-policy fs reads paths from stdin and lists their inodes in the prefetch table;
// an empty or closed stdin is no prefetch at all.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nydusImageOk } from './cli-runner.js';
import { openImage } from '../../src/read/open.js';
import { walkImage } from '../../src/read/check.js';

describe('create --prefetch-policy fs', () => {
  it('writes the prefetch table from the stdin list', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pf-'));
    try {
      const src = path.join(dir, 'src');
      fs.mkdirSync(path.join(src, 'd'), { recursive: true });
      fs.writeFileSync(path.join(src, 'a'), 'a');
      fs.writeFileSync(path.join(src, 'd/b'), 'b');
      const boot = path.join(dir, 'boot');
      await nydusImageOk(['create', '--log-level', 'warn', '--prefetch-policy', 'fs', '-B', boot, '-b', path.join(dir, 'blob'), src], { input: Buffer.from('/d/b\n/a\n/missing\n') });
      const image = openImage(boot);
      const ino = new Map([...walkImage(image.root)].map(([p, n]) => [p, n.ino]));
      expect(image.prefetch).toEqual([ino.get('/d/b'), ino.get('/a')]);
      const none = path.join(dir, 'boot2');
      await nydusImageOk(['create', '--log-level', 'warn', '--prefetch-policy', 'fs', '-B', none, '-b', path.join(dir, 'blob2'), src], { input: Buffer.alloc(0) });
      expect(openImage(none).prefetch).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
