// `nydus-image check` on bootstraps upstream built: the v6 fixture with its blob, and the two
// RAFS v5 bootstraps of the repeatable pair.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { nydusImage, nydusImageOk, UPSTREAM } from './cli-runner.js';

const V6_BLOB = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';
/** What upstream prints for rafs-v6-2.2.boot (blob.md §7.3). */
const V6_REPORT =
  'RAFS filesystem metadata is valid, referenced data blobs: \n' +
  `\t 0: ${V6_BLOB}, compressed size 14554, uncompressed size 36864, chunk size: 1048576, chunk count: 2, features: aligned cap_toc chunk-digest tar-header toc\n`;

describe('check on the upstream RAFS v6 fixture', () => {
  const boot = join(UPSTREAM, 'bootstrap', 'rafs-v6-2.2.boot');

  it('prints upstream\'s report for the bootstrap alone', async () => {
    const r = await nydusImageOk(['check', boot]);
    expect(r.stdout.toString()).toBe(V6_REPORT);
  });

  it('with -D blobs/ reads both chunks back, verified, and prints the same report', async () => {
    const r = await nydusImageOk(['check', boot, '-D', join(UPSTREAM, 'blobs')]);
    expect(r.stdout.toString()).toBe(V6_REPORT);
    // -B is the deprecated spelling of the argument.
    const b = await nydusImageOk(['check', '-B', boot, '-D', join(UPSTREAM, 'blobs')]);
    expect(b.stdout.toString()).toBe(V6_REPORT);
  });

  it('fails in one line when the blob directory lacks the blob', async () => {
    const r = await nydusImage(['check', boot, '-D', join(UPSTREAM, 'bootstrap')]);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.toString().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^Error: .*${V6_BLOB}.*no such file`));
  });
});

describe('check on the upstream RAFS v5 fixtures', () => {
  const repeatable = join(UPSTREAM, 'repeatable');
  for (const name of ['sha256-nocompress-repeatable', 'blake3-lz4_block-non_repeatable']) {
    it(`parses ${name}`, async () => {
      const r = await nydusImageOk(['check', join(repeatable, name)]);
      expect(r.stdout.toString()).toMatch(
        /^RAFS filesystem metadata is valid, referenced data blobs: \n\t 0: 7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00, compressed size 3508766, uncompressed size 3508766, chunk size: 1048576, chunk count: 23, features: \n$/,
      );
    });
  }

  it('reads every chunk of sha256-nocompress-repeatable back from its blob, verified', async () => {
    const r = await nydusImageOk(['check', join(repeatable, 'sha256-nocompress-repeatable'), '-D', join(repeatable, 'blobs')]);
    expect(r.stdout.toString()).toMatch(/^RAFS filesystem metadata is valid/);
  });
});

describe('check on a blob whose tree has no data', () => {
  it('finds the inline bootstrap that starts the blob (it used to read the whole blob as the bootstrap)', async () => {
    const { mkdtempSync, mkdirSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'check-empty-'));
    mkdirSync(join(dir, 'empty'));
    mkdirSync(join(dir, 'out'));
    await nydusImageOk(['create', '--blob-inline-meta', '-D', join(dir, 'out'), join(dir, 'empty')]);
    const [blob] = readdirSync(join(dir, 'out'));
    const r = await nydusImage(['check', join(dir, 'out', blob!)]);
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/^RAFS filesystem metadata is valid/);
  });
});
