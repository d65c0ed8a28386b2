// Outputs written inside the source tree are not part of the image, so rebuilding is repeatable.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nydusImageOk } from './cli-runner.js';
import { openImage } from '../../src/read/open.js';
import { walkImage } from '../../src/read/check.js';

describe('create with outputs inside the source', () => {
  it('leaves its own temporary and final outputs out of the image', async () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'outs-'));
    try {
      fs.writeFileSync(path.join(src, 'data'), Buffer.alloc(300_000, 7));
      fs.mkdirSync(path.join(src, 'blobs'));
      const first = await nydusImageOk(['create', '--log-level', 'warn', '-B', path.join(src, 'boot'), '-b', path.join(src, 'blob'), src]);
      expect(first.stderr.toString()).toBe('');
      const bootA = fs.readFileSync(path.join(src, 'boot'));
      await nydusImageOk(['create', '--log-level', 'warn', '-B', path.join(src, 'boot'), '-b', path.join(src, 'blob'), src]);
      expect(fs.readFileSync(path.join(src, 'boot')).equals(bootA)).toBe(true);
      const names = [...walkImage(openImage(path.join(src, 'boot')).root)].map(([p]) => p);
      expect(names).toEqual(['/', '/blobs', '/data']);
      await nydusImageOk(['create', '--log-level', 'warn', '-D', path.join(src, 'blobs'), '-B', path.join(src, 'boot2'), src]);
      const withDir = [...walkImage(openImage(path.join(src, 'boot2')).root)].map(([p]) => p);
      // The earlier build's files are ordinary source files now; this build's own outputs are not.
      expect(withDir).toEqual(['/', '/blob', '/boot', '/data']);
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
    }
  });
});
