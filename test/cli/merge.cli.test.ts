// `nydus-image merge` as the converter drives it (tar-merge-export.md §9): layers built with the
// converter's directory-fallback create argv, each layer's image.boot extracted to W/<hex>, then
// the exact merge argv with the prefetch list on stdin; and bad inputs failing in one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractInlineBootstrap, openImage } from '../../src/read/open.js';
import { BlobReader } from '../../src/read/data.js';
import type { ImageNode } from '../../src/read/model.js';
import { BIN, nydusImage, nydusImageOk } from './cli-runner.js';

let W = '';
/** Layer bootstraps as the converter leaves them: W/<hex of the layer>. */
const boots: string[] = [];
const hexes: string[] = [];

/** The converter's fallback `create` (§9): untarred layer, whiteouts kept as files. */
async function packLayer(name: string, files: Record<string, string>, extra: string[] = []): Promise<{ hex: string; boot: string }> {
  const dir = join(W, name);
  const source = join(dir, 'source');
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(join(source, rel, '..'), { recursive: true });
    fs.writeFileSync(join(source, rel), data);
  }
  fs.mkdirSync(source, { recursive: true });
  await nydusImageOk([
    'create', '--log-level', 'warn', '--prefetch-policy', 'fs', '--blob', join(dir, 'blob'), '--whiteout-spec', 'none',
    '--fs-version', '6', '--source-type', 'directory', '--inline-bootstrap', ...extra, source,
  ]);
  // The layer digest: the blob is the layer (no blob-toc here, so it is also the blob id).
  const blob = fs.readFileSync(join(dir, 'blob'));
  const hex = createHash('sha256').update(blob).digest('hex');
  fs.writeFileSync(join(W, 'blobs', hex), blob);
  const boot = join(W, hex);
  fs.writeFileSync(boot, extractInlineBootstrap(join(dir, 'blob'))!);
  return { hex, boot };
}

beforeAll(async () => {
  W = await mkdtemp(join(tmpdir(), 'nydus-merge-cli-'));
  fs.mkdirSync(join(W, 'blobs'));
  const l0 = await packLayer('l0', { 'etc/hosts': 'hosts0', 'etc/passwd': 'passwd0', 'usr/bin/tool': 'tool0', gone: 'gone0' });
  const l1 = await packLayer('l1', { '.wh.gone': '', 'etc/passwd': 'passwd1', 'usr/.wh.bin': '', 'usr/lib/x': 'x1', top: 'top1' });
  for (const l of [l0, l1]) {
    boots.push(l.boot);
    hexes.push(l.hex);
  }
}, 120_000);

afterAll(async () => {
  if (W) await rm(W, { recursive: true, force: true });
});

const mergeArgv = (json: string, boot: string, sources = boots) =>
  ['merge', '--log-level', 'warn', '--prefetch-policy', 'fs', '--output-json', json, '--bootstrap', boot, ...sources];

function tree(n: ImageNode): unknown {
  const o: Record<string, unknown> = {};
  for (const c of n.children ?? []) o[c.name.toString()] = c.children ? tree(c) : 1;
  return o;
}

describe('merge with the converter\'s argv', () => {
  for (const stdin of ['', '/\n']) {
    it(`works with ${stdin ? 'stdin "/"' : 'empty stdin'}: silent, pretty JSON, overlaid tree, data from each layer`, async () => {
      const json = join(W, 'merge-output.json');
      const boot = join(W, 'bootstrap');
      fs.rmSync(json, { force: true });
      fs.rmSync(boot, { force: true });
      const r = await nydusImageOk(mergeArgv(json, boot), { input: stdin });
      expect(r.stdout.toString()).toBe('');
      expect(r.stderr.toString()).toBe('');

      const text = fs.readFileSync(json, 'utf8');
      const out = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(out)).toEqual(['version', 'bootstrap', 'blobs', 'external_bootstrap', 'external_blobs', 'trace', 'fs_version', 'compressor']);
      expect(text).toBe(JSON.stringify(out, null, 2));
      expect(out.bootstrap).toBe(boot);
      // First use: /top (layer 1) comes before anything of layer 0 in numbering order.
      expect(out.blobs).toEqual([hexes[1], hexes[0]]);
      expect(out.fs_version).toBe('6');
      expect(out.compressor).toBe('zstd');
      expect(Object.keys((out.trace as { consumed_time: object }).consumed_time)).toEqual(['dump_bootstrap', 'load_tree_from_bootstrap']);

      const image = openImage(boot);
      expect(tree(image.root)).toEqual({ etc: { hosts: 1, passwd: 1 }, top: 1, usr: { lib: { x: 1 } } });
      expect(image.blobs.map((b) => b.blobId)).toEqual([hexes[1], hexes[0]]);
      expect(image.prefetch).toEqual(stdin ? [image.root.ino] : []);
      const reader = new BlobReader(image, { blobDir: join(W, 'blobs') });
      try {
        const read = (...names: string[]) => {
          let n = image.root;
          for (const name of names) n = n.children!.find((c) => c.name.toString() === name)!;
          return Buffer.concat([...reader.readFile(n, true)]).toString();
        };
        expect(read('etc', 'passwd')).toBe('passwd1');
        expect(read('etc', 'hosts')).toBe('hosts0');
        expect(read('usr', 'lib', 'x')).toBe('x1');
        expect(read('top')).toBe('top1');
      } finally {
        reader.close();
      }
    });
  }

  it('does not depend on stdin being open', () => {
    const boot = join(W, 'closed-stdin.boot');
    const r = spawnSync('bash', ['-c', 'exec "$0" "$@" 0<&-', process.execPath, BIN, ...mergeArgv(join(W, 'closed.json'), boot)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(openImage(boot).prefetch).toEqual([]);
  });

  it('accepts options after the sources, and the blob lists of OCI-ref merges', async () => {
    const boot = join(W, 'lists.boot');
    const digests = ['aa'.repeat(32), 'bb'.repeat(32)];
    await nydusImageOk(['merge', '--bootstrap', boot, ...boots, '--blob-digests', digests.join(', '), '--blob-toc-digests', `${'cc'.repeat(32)},${'dd'.repeat(32)}`, '--blob-sizes', '10 , 20']);
    const image = openImage(boot);
    expect(image.blobs.map((b) => [b.blobId, b.compressedSize])).toEqual([[digests[1], 20], [digests[0], 10]]);
    expect(image.blobs[0].tocDigest.toString('hex')).toBe('dd'.repeat(32));
  });

  it('-D without -B names the bootstrap by its sha256', async () => {
    const dir = join(W, 'dout');
    fs.mkdirSync(dir);
    await nydusImageOk(['merge', '-D', dir, ...boots], { input: '' });
    const [name] = fs.readdirSync(dir);
    expect(name).toBe(createHash('sha256').update(fs.readFileSync(join(dir, name))).digest('hex'));
  });

  it('shows upstream\'s flags in its help', async () => {
    const r = await nydusImageOk(['merge', '--help']);
    for (const flag of ['--parent-bootstrap', '--bootstrap', '--blob-dir', '--chunk-dict', '--prefetch-policy', '--output-json',
      '--blob-digests', '--original-blob-ids', '--blob-sizes', '--blob-toc-digests', '--blob-toc-sizes', '--config']) {
      expect(r.stdout.toString()).toContain(flag);
    }
  });
});

describe('merge rejects bad input in one line, writing nothing', () => {
  async function rejects(args: (json: string, boot: string) => string[], exit: number | 'nonzero', message: RegExp): Promise<void> {
    const dir = fs.mkdtempSync(join(W, 'bad-'));
    const json = join(dir, 'merge-output.json');
    const boot = join(dir, 'bootstrap');
    const r = await nydusImage(args(json, boot), { input: '/\n' });
    if (exit === 'nonzero') expect(r.code).not.toBe(0);
    else expect(r.code).toBe(exit);
    const lines = r.stderr.toString().trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Error: /);
    expect(lines[0]).toMatch(message);
    expect(r.stdout.toString()).toBe('');
    expect(fs.readdirSync(dir)).toEqual([]);
  }

  it('layers with different chunk sizes: exit 2', async () => {
    const odd = await packLayer('odd', { f: 'odd' }, ['--chunk-size', '0x10000']);
    await rejects((j, b) => mergeArgv(j, b, [boots[0], odd.boot]), 2, /chunk size 0x10000, expected 0x100000/);
  });

  it('a missing source: exit 1', async () => {
    await rejects((j, b) => mergeArgv(j, b, [boots[0], join(W, 'no-such-layer')]), 1, /no-such-layer: no such file or directory/);
  });

  it('a list with the wrong number of items, or a bad item', async () => {
    await rejects((j, b) => [...mergeArgv(j, b), '--blob-digests', 'aa'.repeat(32)], 'nonzero', /number of blob digest entries 1 doesn't match number of sources 2/);
    await rejects((j, b) => [...mergeArgv(j, b), '--original-blob-ids', 'a,b,c'], 'nonzero', /number of original blob id entries 3 doesn't match number of sources 2/);
    await rejects((j, b) => [...mergeArgv(j, b), '--blob-sizes', '1,x'], 'nonzero', /invalid number "x" in --blob-sizes/);
    await rejects((j, b) => [...mergeArgv(j, b), '--blob-toc-sizes', '1'], 'nonzero', /number of toc size entries 1/);
  });

  it('--config is refused; no -B and no -D is refused', async () => {
    await rejects((j, b) => [...mergeArgv(j, b), '--config', join(W, 'cfg.json')], 'nonzero', /--config is not supported yet/);
    await rejects(() => ['merge', ...boots], 'nonzero', /both --bootstrap and --blob-dir are missing/);
  });
});
