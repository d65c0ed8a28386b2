// Every user error is exactly one line, even when the name it carries holds newlines or control bytes.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nydusImage } from './cli-runner.js';

describe('error lines', () => {
  it('escapes a newline and control bytes of a file name instead of breaking the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'errline-'));
    const bad = join(dir, 'evil\nError: forged second line\x1b[31m');
    writeFileSync(bad, Buffer.alloc(100));
    for (const args of [['check', '-B', bad], ['inspect', bad], ['check', '-B', join(dir, 'missing\nname')]]) {
      const r = await nydusImage(args);
      expect(r.code).toBe(1);
      const err = r.stderr.toString();
      expect(err.split('\n').filter((l) => l.length > 0)).toHaveLength(1);
      expect(err).toMatch(/^Error: .*evil\\nError: forged second line\\x1b\[31m|^Error: .*missing\\nname/);
    }
  });
});
