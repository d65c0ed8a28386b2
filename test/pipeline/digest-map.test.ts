// The dedup dictionary (src/pipeline/digest-map.ts): digest -> chunk index in typed arrays. It
// must answer exactly as a Map keyed by the digest's bytes would, through growth, overwrites,
// digests that share leading bytes (a hostile chunk dict's choice) and clear().
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DigestMap } from '../../src/pipeline/digest-map.js';

const digest = (i: number) => createHash('sha256').update(`chunk ${i}`).digest();

describe('DigestMap', () => {
  it('answers as a Map of the digest bytes would, through growth and overwrites', () => {
    const m = new DigestMap();
    const ref = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const d = digest(i % 15_000);
      const v = i * 7;
      m.set(d, v);
      ref.set(d.toString('hex'), v);
    }
    expect(m.size).toBe(ref.size);
    for (let i = 0; i < 16_000; i++) {
      const d = digest(i);
      expect(m.get(d)).toBe(ref.get(d.toString('hex')));
      expect(m.has(d)).toBe(ref.has(d.toString('hex')));
    }
  });

  it('looks a digest up by its bytes wherever they sit, not by the buffer holding them', () => {
    const m = new DigestMap();
    const d = digest(1);
    m.set(d, 5);
    const store = new Uint8Array(96);
    store.set(d, 40);
    expect(m.get(store.subarray(40, 72))).toBe(5);
    store[71] ^= 1;
    expect(m.get(store.subarray(40, 72))).toBeUndefined();
  });

  it('keeps digests apart that share all but their last byte', () => {
    const m = new DigestMap();
    const base = digest(2);
    for (let i = 0; i < 256; i++) {
      const d = Buffer.from(base);
      d[31] = i;
      m.set(d, i);
    }
    expect(m.size).toBe(256);
    for (let i = 0; i < 256; i++) {
      const d = Buffer.from(base);
      d[31] = i;
      expect(m.get(d)).toBe(i);
    }
  });

  it('forgets everything on clear() and refuses digests that are not 32 bytes', () => {
    const m = new DigestMap();
    for (let i = 0; i < 3000; i++) m.set(digest(i), i);
    m.clear();
    expect(m.size).toBe(0);
    expect(m.get(digest(7))).toBeUndefined();
    m.set(digest(7), 1);
    expect(m.get(digest(7))).toBe(1);
    expect(m.get(new Uint8Array(20))).toBeUndefined();
    expect(() => m.set(new Uint8Array(20), 1)).toThrow(/20 bytes/);
  });
});
