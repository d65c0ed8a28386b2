// The frozen CLI surface other tools depend on: the snapshotter's `create -h` feature
// detection (stdout only, exit 0), upstream's aliases, and flags we refuse rather than ignore.
import { describe, expect, it } from 'vitest';
import { nydusImage } from './cli-runner.js';

describe('CLI surface', () => {
  it('create -h carries the strings the converter looks for', async () => {
    const r = await nydusImage(['create', '-h']);
    expect(r.code).toBe(0);
    const out = r.stdout.toString();
    for (const s of ['--type', 'tar-rafs', '--batch-size', '--encrypt', '--blob-inline-meta', '--features', '--chunk-dict']) expect(out).toContain(s);
    expect(r.stderr.toString()).toBe('');
    // Advertised as upstream does, now that both work end to end.
    const flat = out.replace(/\s+/g, ' ');
    expect(flat).toContain('-E, --encrypt Encrypt the generated RAFS metadata and data blobs');
    expect(flat).toContain('--batch-size=<value> [default: 0] Set the batch size to merge small chunks, must be power of two, between 0x1000-0x1000000 or be zero:');
  });

  it('refuses flags it cannot honour yet, never ignoring them', async () => {
    for (const args of [['--attributes', 'x'], ['--blob-offset', '0x1000']]) {
      const r = await nydusImage(['create', ...args, '-B', '/tmp/never-boot', '-b', '/tmp/never-blob', '.']);
      expect(r.code).not.toBe(0);
      const err = r.stderr.toString().trim();
      expect(err.split('\n')).toHaveLength(1);
      expect(err).toMatch(/not supported yet/);
    }
  });

  it('accepts upstream aliases: --source-type and --inline-bootstrap', async () => {
    const r = await nydusImage(['create', '--source-type', 'directory', '--inline-bootstrap', '--blob-id', 'x', '-b', '/tmp/never', '.']);
    // --blob-id conflicts with inline meta: parsed fine, refused by the rule, one line.
    expect(r.code).not.toBe(0);
    expect(r.stderr.toString()).toMatch(/--blob-id cannot be used with --blob-inline-meta/);
  });
});
