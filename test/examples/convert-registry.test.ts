// examples/convert-registry.mjs runs as documented: it starts its own docker-registry, pushes a
// small image with copy() from an OCI layout it writes, converts it with convert() and prints
// the result; it leaves no registry process and no temporary directory behind.
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registryMissing } from '../helpers/registry.js';
import { run } from '../helpers/tools.js';
import { REPO } from '../cli/cli-runner.js';

const missing = registryMissing();
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/examples/convert-registry.test.ts\n`);

const leftovers = () => readdirSync(tmpdir()).filter((n) => n.startsWith('nydus-example-'));

describe.skipIf(missing)('examples/convert-registry.mjs', () => {
  it('converts the image it pushed to its own registry and prints the Nydus manifest', async () => {
    const before = leftovers();
    const r = await run(process.execPath, [join(REPO, 'examples', 'convert-registry.mjs')], { cwd: REPO, timeoutMs: 120_000 });
    const out = r.stdout.toString();
    expect(r.code, `${out}\n${r.stderr.toString()}`).toBe(0);
    expect(r.stderr.toString()).toBe('');
    expect(out).toMatch(/^pushed 127\.0\.0\.1:\d+\/example\/app:v1 \(3 blobs\)$/m);
    expect(out).toMatch(/^converted to 127\.0\.0\.1:\d+\/example\/app:v1-nydus@sha256:[0-9a-f]{64}$/m);
    expect(out).toMatch(/application\/vnd\.oci\.image\.manifest\.v1\+json: 2 blobs, bootstrap layer sha256:[0-9a-f]{64}/);
    const last = JSON.parse(out.trim().split('\n').at(-1)!) as { digest: string; metrics: Record<string, number> };
    expect(last.digest).toMatch(/^sha256:/);
    expect(last.metrics.TargetImageSize).toBeGreaterThan(3 << 20);
    expect(leftovers()).toEqual(before);
  }, 120_000);
});
