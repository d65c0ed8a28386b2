// Image configs and manifests read as hostile JSON: each fault is one line naming the field.
import { describe, expect, it } from 'vitest';
import { NydusError } from '../../src/errors.js';
import { parseJson, parseManifestOrIndex, validateConfig } from '../../src/oci/manifest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { sha256Of } from '../../src/oci/digest.js';

const D = `sha256:${'ab'.repeat(32)}`;

function fails(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('expected a failure');
}

describe('image config', () => {
  const good = { architecture: 'amd64', os: 'linux', config: { Env: ['A=1'] }, rootfs: { type: 'layers', diff_ids: [D] }, history: [{ created_by: 'x', empty_layer: true }], extra: { kept: 1 } };

  it('keeps what it does not know and checks what the toolchain uses', () => {
    expect(validateConfig(JSON.parse(JSON.stringify(good)), 'cfg')).toEqual(good);
    const cases: Array<[unknown, string]> = [
      [{ ...good, rootfs: { type: 'layers', diff_ids: ['sha256:..'] } }, 'cfg: rootfs.diff_ids[0] "sha256:.." is not sha256:<64 lowercase hex digits>'],
      [{ ...good, rootfs: { type: 'other', diff_ids: [] } }, 'cfg: rootfs.type is "other", not "layers"'],
      [{ ...good, rootfs: undefined }, 'cfg: rootfs is missing, not an object'],
      [{ ...good, os: 7 }, 'cfg: config.os is number "7", not a string'],
      [{ ...good, history: [{ empty_layer: 'yes' }] }, 'cfg: history[0].empty_layer is string "yes", not a boolean'],
      [{ ...good, config: [] }, 'cfg: config.config is an array, not an object'],
      [[], 'cfg: config is an array, not an object'],
    ];
    for (const [doc, why] of cases) expect(fails(() => validateConfig(doc, 'cfg'))).toBe(why);
  });

  it('bounds the bytes before parsing', () => {
    expect(fails(() => parseJson(Buffer.alloc((16 << 20) + 1, 0x20), 'cfg', 'IMAGE_CONFIG_MAX'))).toMatch(/^cfg: 16777217 exceeds IMAGE_CONFIG_MAX \(16777216\)/);
    expect(fails(() => parseJson(Buffer.from('{"a":'), 'cfg', 'IMAGE_CONFIG_MAX'))).toMatch(/^cfg: not valid JSON/);
  });
});

describe('manifest kinds', () => {
  it('takes the media type from the document, else the Content-Type, else the shape', () => {
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MEDIA.OCI_CONFIG, digest: D, size: 1 }, layers: [] }));
    expect(parseManifestOrIndex(m, undefined, sha256Of(m), 'x').mediaType).toBe(MEDIA.OCI_MANIFEST);
    expect(parseManifestOrIndex(m, `${MEDIA.DOCKER_MANIFEST}; charset=utf-8`, sha256Of(m), 'x').mediaType).toBe(MEDIA.DOCKER_MANIFEST);
    const i = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    expect(parseManifestOrIndex(i, 'application/json', sha256Of(i), 'x').kind).toBe('index');
    const odd = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'text/plain' }));
    expect(fails(() => parseManifestOrIndex(odd, undefined, sha256Of(odd), 'x'))).toBe('x: media type "text/plain" is not a manifest or an index');
  });
});
