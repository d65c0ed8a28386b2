// The registry client against a real docker-registry: streamed blob upload (one PATCH or many),
// HEAD, pulls that verify the digest (a blob corrupted in the registry's storage is caught),
// cross-repository mounts and their fallback, manifests and indexes by tag and by digest.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NydusError } from '../../src/errors.js';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';

const missing = registryMissing();
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/registry.test.ts\n`);

/** A stream of `data` in uneven slices, as a builder would produce it. */
export function sliced(data: Buffer, sizes = [1, 7000, 65536, 3]): Readable {
  return Readable.from((function* () {
    let off = 0;
    for (let i = 0; off < data.length; i++) {
      const n = sizes[i % sizes.length]!;
      yield data.subarray(off, off + n);
      off += n;
    }
  })(), { objectMode: false });
}

export async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export async function caught(p: Promise<unknown>): Promise<NydusError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    expect((e as Error).message).not.toContain('\n');
    return e as NydusError;
  }
  throw new Error('expected a failure');
}

describe.skipIf(missing)('registry client', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host, { plainHttp: true, credentials: null, retryDelayMs: 10 });
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
  });

  it('pushes a blob by one streamed PATCH, HEADs it and pulls it back verified', async () => {
    const data = randomBytes(300_000);
    const r = await client.pushBlob('test/a', sliced(data));
    expect(r).toEqual({ digest: sha256Of(data), size: data.length, mounted: false });
    expect(await client.headBlob('test/a', r.digest)).toBe(data.length);
    expect(await client.headBlob('test/a', sha256Of('absent'))).toBeUndefined();
    expect((await collect(await client.getBlob('test/a', r.digest, data.length))).equals(data)).toBe(true);
  });
});
