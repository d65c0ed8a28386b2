// `nydus-image inspect` as users run it (needs a build: tsc and oclif manifest).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UPSTREAM, nydusImage, nydusImageOk } from './cli-runner.js';

const V6 = join(UPSTREAM, 'bootstrap/rafs-v6-2.2.boot');
const V5 = join(UPSTREAM, 'repeatable/sha256-nocompress-repeatable');
const BLOBS_V6 = '[{"blob_id":"be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef","compressed_size":14554,"decompressed_size":36864,"readahead_offset":0,"readahead_size":0}]';

describe('nydus-image inspect -R', () => {
  it('-R blobs as two argv elements: compact JSON, no trailing newline, nothing on stderr', async () => {
    const r = await nydusImageOk(['inspect', V6, '-R', 'blobs']);
    expect(r.stdout.toString()).toBe(BLOBS_V6);
    expect(r.stderr.toString()).toBe('');
  });

  it('-R blobs as one argv element, and --request=blobs', async () => {
    expect((await nydusImageOk(['inspect', V6, '-R blobs'])).stdout.toString()).toBe(BLOBS_V6);
    expect((await nydusImageOk(['inspect', '-Rblobs', V6])).stdout.toString()).toBe(BLOBS_V6);
    expect((await nydusImageOk(['inspect', `--request=blobs`, V6])).stdout.toString()).toBe(BLOBS_V6);
  });

  it('a request with an argument in one element; -B names the bootstrap', async () => {
    const r = await nydusImageOk(['inspect', '-B', V6, '--request', 'stat lib.rs']);
    const text = r.stdout.toString();
    expect(text).toMatch(/^\nInode Number: {7}133\nName: {15}"lib.rs"\nSize: {15}16931\n/);
    expect(text).toContain('        blob id: be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef\n');
    expect(text.endsWith('    \nnull')).toBe(true);
  });

  it('stats and ls on v5 and v6', async () => {
    expect((await nydusImageOk(['inspect', V6, '-R', 'stats'])).stdout.toString()).toBe('{"inodes_count":3}');
    expect((await nydusImageOk(['inspect', V5, '-R', 'stats'])).stdout.toString()).toBe('{"inodes_count":51}');
    expect((await nydusImageOk(['inspect', V6, '-R', 'ls'])).stdout.toString()).toBe('-    133      "lib.rs"\n-    136      "sync_io.rs"\nnull');
    expect((await nydusImageOk(['inspect', V5, '-R', 'blobs'])).stdout.toString()).toBe(
      '[{"blob_id":"7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00","compressed_size":3508766,"decompressed_size":3508766,"readahead_offset":0,"readahead_size":0}]',
    );
  });

  it('an unknown request: one line on stderr, nothing on stdout, exit 2', async () => {
    const r = await nydusImage(['inspect', V6, '-R', 'bogus']);
    expect(r.code).toBe(2);
    expect(r.stdout.toString()).toBe('');
    const err = r.stderr.toString();
    expect(err).toMatch(/^Error: unsupported inspect request `bogus`/);
    expect(err.split('\n')).toHaveLength(2);
  });

  it('a bad argument is a usage error; a missing inode fails with exit 1', async () => {
    const bad = await nydusImage(['inspect', V6, '-R', 'chunk abc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.toString()).toBe('Error: invalid arguments in inspect request `chunk abc`: OFFSET must be a decimal u64\n');
    const missing = await nydusImage(['inspect', V6, '-R', 'icheck 99']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.toString()).toBe('Error: failed to execute inspect request `icheck 99`: no inode 99\n');
  });

  it('bootstrap given twice, no bootstrap, -D with -C, a missing file', async () => {
    expect((await nydusImage(['inspect', V6, '-B', V6, '-R', 'stats'])).code).toBe(2);
    expect((await nydusImage(['inspect', '-R', 'stats'])).code).toBe(2);
    expect((await nydusImage(['inspect', V6, '-D', UPSTREAM, '-C', V6, '-R', 'stats'])).code).toBe(2);
    const gone = await nydusImage(['inspect', join(UPSTREAM, 'no-such-bootstrap'), '-R', 'stats']);
    expect(gone.code).toBe(1);
    expect(gone.stderr.toString()).toMatch(/^Error: .*no-such-bootstrap: no such file or directory\n$/);
    expect((await nydusImageOk(['inspect', V6, '-D', UPSTREAM, '-R', 'stats'])).stdout.toString()).toBe('{"inodes_count":3}');
  });
});

describe('nydus-image inspect without -R (stdin not a terminal)', () => {
  it('prints the report', async () => {
    const r = await nydusImageOk(['inspect', V6]);
    const text = r.stdout.toString();
    expect(text).toContain('RAFS v6 bootstrap, 20480 bytes\n');
    expect(text).toContain('  flags:       0x194 (HASH_BLAKE3 | EXPLICIT_UID_GID | COMPRESSION_ZSTD | INLINED_CHUNK_DIGEST)\n');
    expect(text).toContain('  0: be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef compressed 14554 uncompressed 36864 chunks 2 chunk size 0x100000 zstd blake3 features: aligned cap_toc chunk-digest tar-header toc\n');
    expect(text).toContain('  133 -rw-r--r-- 1 0 0 16931 2023-02-19 15:12:33 /lib.rs\n');
    expect(text.endsWith('  136 -rw-r--r-- 1 0 0 13400 2023-02-19 15:12:33 /sync_io.rs\n')).toBe(true);
    expect(r.stderr.toString()).toBe('');
  });
});
