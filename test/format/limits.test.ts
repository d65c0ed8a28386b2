// The one table of limits: its rules, and the README's "Limits" section holding every entry.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIMITS, badBlobId, badName, checkLimit } from '../../src/format/limits.js';
import { NydusError } from '../../src/errors.js';
import { REPO } from '../cli/cli-runner.js';

describe('limits', () => {
  it('badName refuses what cannot be one entry name and accepts any other bytes', () => {
    for (const bad of ['', '.', '..', 'a/b', '/', 'a\0b', 'x'.repeat(256)]) expect(badName(Buffer.from(bad)), JSON.stringify(bad)).toBeDefined();
    for (const ok of ['a', '...', '.a', '..a', 'x'.repeat(255), '\xff\xfe', ' ']) expect(badName(Buffer.from(ok, 'latin1'))).toBeUndefined();
  });

  it('badBlobId refuses paths and accepts upstream ids', () => {
    for (const bad of ['', '.', '..', '../x', '/etc/passwd', 'a/b', 'sha256:abc', 'x'.repeat(65), 'a\0', 'a b']) expect(badBlobId(bad), bad).toBeDefined();
    for (const ok of ['0'.repeat(64), 'abc', 'layer-1.blob', 'A_b.c-d']) expect(badBlobId(ok)).toBeUndefined();
  });

  it('checkLimit throws a one-line SOURCE error naming the place, the value and the limit', () => {
    expect(() => checkLimit('NAME_MAX', 'a/b', 255)).not.toThrow();
    let err: unknown;
    try {
      checkLimit('NAME_MAX', 'tar member a/b', 300);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NydusError);
    const e = err as NydusError;
    expect(e.exit).toBe(1);
    expect(e.message).not.toContain('\n');
    expect(e.message).toMatch(/^tar member a\/b: 300 exceeds NAME_MAX \(255\)/);
  });

  it('README documents every limit with its value', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const section = /^## Limits\n([\s\S]*?)(?=^## )/m.exec(readme);
    expect(section, 'README.md has a "## Limits" section').not.toBeNull();
    const rows = new Map<string, string>();
    for (const m of section![1]!.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \|/gm)) rows.set(m[1]!, m[2]!.trim());
    for (const [name, l] of Object.entries(LIMITS)) {
      expect(rows.has(name), `README row for ${name}`).toBe(true);
      expect(Number(rows.get(name)!.replace(/[ ,_]/g, '')), `README value of ${name}`).toBe(l.value);
    }
    expect([...rows.keys()].filter((k) => !(k in LIMITS))).toEqual([]);
  });
});
