// The OCI side of `nydusify check`: layers parsed by our tar source and overlaid with the OCI
// rules, each regular file's content hashed as it streams past. Judged on tars written here
// member by member: markers vanish even in the lowest layer, a whiteout of a hardlink group's
// first name leaves the other names with the content and the right link count.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ociRootfs, type LayerTar } from '../../src/oci/rootfs.js';
import { writeTar, type TarMember } from '../helpers/oci.js';

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-rootfs-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

async function layers(...specs: TarMember[][]): Promise<LayerTar[]> {
  const out: LayerTar[] = [];
  for (const [i, members] of specs.entries()) {
    const data = await writeTar(join(work, `l${i}-${Math.random().toString(16).slice(2)}.tar`), members);
    // Odd slices, as a network stream would deliver them.
    out.push({ where: `layer ${i}`, open: async () => Readable.from([data.subarray(0, 700), data.subarray(700, 5000), data.subarray(5000)]) });
  }
  return out;
}

describe('ociRootfs', () => {
  it('applies the layers in order: whiteouts (even in the lowest layer), opaque dirs, replaced files', async () => {
    const fs = await ociRootfs(await layers(
      [
        { name: './', type: 'dir' },
        { name: '.wh.nothing', type: 'file', data: '' },
        { name: 'd/', type: 'dir' },
        { name: 'd/old', type: 'file', data: 'old' },
        { name: 'f', type: 'file', data: 'v0', mode: 0o600, uid: 5, mtime: 1_000 },
        { name: 'gone', type: 'file', data: 'x' },
      ],
      [
        { name: 'd/', type: 'dir', mode: 0o700 },
        { name: 'd/.wh..wh..opq', type: 'file', data: '' },
        { name: 'd/new', type: 'file', data: 'new' },
        { name: 'f', type: 'file', data: 'v1!', mode: 0o640, mtime: 2_000 },
        { name: '.wh.gone', type: 'file', data: '' },
      ],
    ), 'test image');
    expect([...fs.keys()].sort()).toEqual(['/', '/d', '/d/new', '/f']);
    expect(fs.get('/f')).toMatchObject({ mode: 0o100640, uid: 0, size: 3, mtime: 2_000, nlink: 1, digest: sha('v1!') });
    expect(fs.get('/d')).toMatchObject({ mode: 0o40700, nlink: 2 });
    expect(fs.get('/')).toMatchObject({ nlink: 3 });
  });

  it('a whiteout of a hardlink group\'s first name: the other names keep the content, the group shrinks', async () => {
    const fs = await ociRootfs(await layers(
      [
        { name: 'h/', type: 'dir' },
        { name: 'h/orig', type: 'file', data: 'abc' },
        { name: 'h/link1', type: 'hardlink', linkname: 'h/orig' },
        { name: 'h/link2', type: 'hardlink', linkname: 'h/orig' },
      ],
      [{ name: 'h/.wh.orig', type: 'file', data: '' }],
    ), 'test image');
    expect(fs.has('/h/orig')).toBe(false);
    for (const p of ['/h/link1', '/h/link2']) {
      expect(fs.get(p)).toMatchObject({ size: 3, nlink: 2, digest: sha('abc') });
      expect(fs.get(p)!.links!.map(String)).toEqual(['/h/link1', '/h/link2']);
    }
  });

  it('a layer that is not a tar stops with one line naming the layer', async () => {
    const bad: LayerTar = { where: 'image x: layer 1', open: async () => Readable.from([Buffer.alloc(1024, 0x41)]) };
    const err = await ociRootfs([...(await layers([{ name: 'a', type: 'file', data: 'a' }])), bad], 'image x').then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/image x: layer 1/);
    expect(err?.message).not.toContain('\n');
  });
});
