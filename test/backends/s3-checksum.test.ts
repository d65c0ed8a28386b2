// The S3 backend computes part checksums natively (src/backends/s3.ts): they must equal what the
// AWS SDK itself computes, or a real S3 would refuse every part.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Crc32 } from '@aws-sdk/checksums/crc';
import { precomputed } from '../../src/backends/s3.js';
import { prng } from '../helpers/tree.js';

describe('S3 part checksums', () => {
  it('CRC32 equals the SDK\'s (and the standard check value); SHA256 is base64 of the digest', async () => {
    for (const data of [Buffer.from('123456789'), Buffer.alloc(0), prng(9, 5 << 20)]) {
      const h = new Crc32();
      h.update(data);
      expect(precomputed('CRC32', data).ChecksumCRC32).toBe(Buffer.from(await h.digest()).toString('base64'));
    }
    expect(Buffer.from(precomputed('CRC32', Buffer.from('123456789')).ChecksumCRC32!, 'base64').toString('hex')).toBe('cbf43926');
    const d = prng(3, 1000);
    expect(precomputed('SHA256', d).ChecksumSHA256).toBe(createHash('sha256').update(d).digest('base64'));
    // Left to the SDK.
    expect(precomputed('CRC32C', d)).toEqual({});
  });
});
