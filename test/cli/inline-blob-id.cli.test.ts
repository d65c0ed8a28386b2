// A bootstrap taken out of an inline-meta blob names its blob "xxx…": check and inspect report
// the id its file name carries instead, as upstream's loader does (blob.md §5.3).
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nydusImageOk } from './cli-runner.js';
import { extractInlineBootstrap } from '../../src/read/open.js';

describe('blob ids of inline-meta layers', () => {
  it('come from the bootstrap file name in check -J and inspect -R blobs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ids-'));
    try {
      fs.mkdirSync(path.join(dir, 'src'));
      fs.writeFileSync(path.join(dir, 'src/f'), 'content');
      const blob = path.join(dir, 'blob.rafs');
      await nydusImageOk(['create', '--log-level', 'warn', '--blob-inline-meta', '--features', 'blob-toc', '-b', blob, path.join(dir, 'src')]);
      const boot = extractInlineBootstrap(blob)!;
      expect(boot.includes(Buffer.from('x'.repeat(64)))).toBe(true);
      const hex = 'ab'.repeat(32);
      fs.writeFileSync(path.join(dir, hex), boot);
      await nydusImageOk(['check', '-J', path.join(dir, 'c.json'), path.join(dir, hex)]);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'c.json'), 'utf8')).blobs).toEqual([hex]);
      const r = await nydusImageOk(['inspect', '-R blobs', path.join(dir, hex)]);
      expect(r.stdout.toString()).toContain(`"blob_id":"${hex}"`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
