// `--version` as the container tools parse it: the nydus-snapshotter converter (BuildKit v0.12)
// compares the first regex's capture against the release that brought tar-rafs (v2.2) and falls
// back to the slow directory mode below it; acceld writes the second one's capture as the
// nydus-builder-version annotation.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/tools.js';
import { nydusImage, REPO } from './cli-runner.js';

const SNAPSHOTTER = /Version:\s*v*(\d+.\d+.\d+)/;
const ACCELD = /Version:\s*(v.*)/;
const NYDUSIFY = join(REPO, 'bin', 'nydusify.js');

/** semver's order on "a.b.c" (the snapshotter uses golang.org/x/mod/semver.Compare). */
function atLeast(version: string, min: readonly number[]): boolean {
  const v = version.split('.').map(Number);
  for (let i = 0; i < min.length; i++) if (v[i] !== min[i]) return v[i]! > min[i]!;
  return true;
}

describe('nydus-image --version', () => {
  for (const flag of ['--version', '-V']) {
    it(`${flag} prints upstream's fields, parsed by both converters' regexes`, async () => {
      const r = await nydusImage([flag]);
      expect(r.code).toBe(0);
      expect(r.stderr.toString()).toBe('');
      const out = r.stdout.toString();
      const lines = out.trimEnd().split('\n').map((l) => l.split(':')[0]);
      expect(lines).toEqual(['Version', 'Git Commit', 'Build Time', 'Profile', 'Node']);
      const snap = SNAPSHOTTER.exec(out);
      expect(snap).not.toBeNull();
      expect(atLeast(snap![1]!, [2, 2])).toBe(true);
      const acceld = ACCELD.exec(out);
      expect(acceld).not.toBeNull();
      expect(acceld![1]).toMatch(/^v\d+\.\d+\.\d+-nydus-ts-\d+\.\d+\.\d+$/);
      // The commit is this checkout's, the build time a real instant.
      const commit = /^Git Commit:\s*(\S+)$/m.exec(out)![1]!;
      const head = await run('git', ['-C', REPO, 'rev-parse', 'HEAD']);
      expect(commit).toBe(head.stdout.toString().trim());
      expect(Number.isNaN(Date.parse(/^Build Time:\s*(\S+)$/m.exec(out)![1]!))).toBe(false);
    });
  }

  it('create --output-json names the same version the converters read', async () => {
    const work = await mkdtemp(join(tmpdir(), 'nydus-version-'));
    try {
      await mkdir(join(work, 'src'));
      await mkdir(join(work, 'blobs'));
      await writeFile(join(work, 'src', 'a'), 'a');
      const c = await nydusImage(['create', '-B', join(work, 'boot'), '-D', join(work, 'blobs'), '-J', join(work, 'out.json'), join(work, 'src')]);
      expect(c.code, c.stderr.toString()).toBe(0);
      const json = JSON.parse(await readFile(join(work, 'out.json'), 'utf8')) as { version: string };
      const out = (await nydusImage(['--version'])).stdout.toString();
      expect(ACCELD.exec(out)![1]).toBe(json.version);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('nydusify --version', () => {
  for (const flag of ['--version', '-v']) {
    it(`${flag} prints upstream nydusify's fields`, async () => {
      const r = await run(process.execPath, [NYDUSIFY, flag]);
      expect(r.code).toBe(0);
      const out = r.stdout.toString();
      expect(out.split('\n')[0]).toBe('Nydusify version ');
      expect(/^Version\t: (v\S+)$/m.exec(out)?.[1]).toMatch(/-nydus-ts-/);
      for (const field of ['Revision', 'Node version', 'Build time']) expect(out).toMatch(new RegExp(`^${field}\\t: \\S+`, 'm'));
    });
  }
});
