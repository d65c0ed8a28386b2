// The example stage, loaded by the CLI as a real plugin: excluded paths (and everything below
// an excluded directory) are absent from the image; what remains reads back intact.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openImage } from '../../src/read/open.js';
import { BlobReader } from '../../src/read/data.js';
import { walkImage } from '../../src/read/check.js';
import pathFilter, { globToRegExp } from './index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('path-filter plugin', () => {
  it('turns globs into path matchers', () => {
    expect(globToRegExp('**/*.log').test('/a/b/c.log')).toBe(true);
    expect(globToRegExp('*.log').test('/x.log')).toBe(true);
    expect(globToRegExp('/tmp').test('/tmp')).toBe(true);
    expect(globToRegExp('/tmp').test('/a/tmp')).toBe(false);
    expect(globToRegExp('/a/*').test('/a/b/c')).toBe(false);
    expect(pathFilter({ exclude: 'x' }).kind).toBe('entry');
  });

  it('drops matching entries before the chunker when loaded by the CLI', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pf-'));
    try {
      const src = path.join(dir, 'src');
      fs.mkdirSync(path.join(src, 'logs/deep'), { recursive: true });
      fs.mkdirSync(path.join(src, 'keep'));
      fs.writeFileSync(path.join(src, 'logs/deep/a.txt'), 'below an excluded dir');
      fs.writeFileSync(path.join(src, 'keep/app.log'), 'log');
      fs.writeFileSync(path.join(src, 'keep/data.txt'), 'kept content');
      // A hardlink whose first name (in layout order) is excluded: the other name keeps the data.
      fs.writeFileSync(path.join(src, 'a.log'), 'linked content');
      fs.linkSync(path.join(src, 'a.log'), path.join(src, 'keep/linked'));
      const boot = path.join(dir, 'boot');
      const blob = path.join(dir, 'blob');
      const r = spawnSync(process.execPath, [
        path.join(root, 'bin/nydus-image.js'), 'create', '--log-level', 'warn',
        '--plugin', `${path.join(root, 'plugins/path-filter')}/index.js?exclude=*.log,/logs`,
        '-B', boot, '-b', blob, src,
      ], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const image = openImage(boot);
      const paths = [...walkImage(image.root)].map(([p]) => p).sort();
      expect(paths).toEqual(['/', '/keep', '/keep/data.txt', '/keep/linked']);
      const reader = new BlobReader(image, { blob });
      const read = (p: string) => Buffer.concat([...reader.readFile([...walkImage(image.root)].find(([q]) => q === p)![1], true)]).toString();
      expect(read('/keep/data.txt')).toBe('kept content');
      expect(read('/keep/linked')).toBe('linked content');
      reader.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a plugin that is not a stage factory', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pf-'));
    try {
      fs.writeFileSync(path.join(dir, 'bad.js'), 'export default 42;\n');
      fs.mkdirSync(path.join(dir, 'src'));
      const r = spawnSync(process.execPath, [path.join(root, 'bin/nydus-image.js'), 'create', '--plugin', path.join(dir, 'bad.js'), '-B', path.join(dir, 'b'), '-b', path.join(dir, 'x'), path.join(dir, 'src')], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/default export must be a function/);
      expect(fs.existsSync(path.join(dir, 'b'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
