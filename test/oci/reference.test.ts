// Image references as docker parses them, and digests as the client checks them before use.
import { describe, expect, it } from 'vitest';
import { NydusError } from '../../src/errors.js';
import { badDigest, DigestingStream, sha256Of } from '../../src/oci/digest.js';
import { apiHost, formatReference, parseReference, refTarget } from '../../src/oci/reference.js';
import { collect, sliced } from '../helpers/registry.js';

const D = `sha256:${'0123456789abcdef'.repeat(4)}`;

describe('parseReference', () => {
  it('normalises as docker does', () => {
    const cases: Array<[string, string, string]> = [
      ['alpine', 'docker.io/library/alpine', 'latest'],
      ['alpine:3.19', 'docker.io/library/alpine:3.19', '3.19'],
      ['user/app', 'docker.io/user/app', 'latest'],
      ['docker.io/alpine', 'docker.io/library/alpine', 'latest'],
      ['index.docker.io/library/alpine:edge', 'docker.io/library/alpine:edge', 'edge'],
      ['myhost/app', 'docker.io/myhost/app', 'latest'],
      ['localhost/app', 'localhost/app', 'latest'],
      ['localhost:5000/a/b:tag@' + D, `localhost:5000/a/b:tag@${D}`, D],
      ['127.0.0.1:5000/app', '127.0.0.1:5000/app', 'latest'],
      ['[::1]:5000/app:v1', '[::1]:5000/app:v1', 'v1'],
      ['Registry.Example.com/ns/app_x.y-z__w', 'registry.example.com/ns/app_x.y-z__w', 'latest'],
      ['ghcr.io/o/r@' + D, `ghcr.io/o/r@${D}`, D],
    ];
    for (const [input, canonical, target] of cases) {
      const ref = parseReference(input);
      expect(formatReference(ref), input).toBe(canonical);
      expect(refTarget(ref), input).toBe(target);
    }
    expect(apiHost(parseReference('alpine').registry)).toBe('registry-1.docker.io');
    expect(apiHost(parseReference('localhost:5000/x').registry)).toBe('localhost:5000');
  });

  it('refuses what is not a reference, in one USAGE line naming it', () => {
    const cases: Array<[string, string]> = [
      ['', 'empty'],
      ['Alpine', 'repository name must be lowercase'],
      ['a//b', 'repository component ""'],
      ['host:5000/', 'no repository name'],
      ['app:', 'tag ""'],
      ['app:-x', 'tag "-x"'],
      ['a/b:tag/c', 'repository component "b:tag"'],
      ['app@sha256:abc', 'is not sha256:<64 lowercase hex digits>'],
      [`app@sha512:${'a'.repeat(128)}`, 'uses an algorithm other than sha256'],
      ['bad_host:5000:1/app', 'registry "bad_host:5000:1" is not host[:port]'],
      [`r.io/${'a'.repeat(300)}`, 'name longer than 255 characters'],
      ['app\n:x', 'repository component "app\\n"'],
    ];
    for (const [input, why] of cases) {
      let err: unknown;
      try {
        parseReference(input);
      } catch (e) {
        err = e;
      }
      expect(err, input).toBeInstanceOf(NydusError);
      const e = err as NydusError;
      expect(e.exit, input).toBe(2);
      expect(e.message, input).not.toContain('\n');
      expect(e.message, input).toContain(why);
    }
  });
});

describe('digests', () => {
  it('accept only sha256:<64 lowercase hex>', () => {
    expect(badDigest(D)).toBeUndefined();
    for (const bad of [D.toUpperCase(), `${D}0`, D.slice(0, -1), 'sha256:../../x', `sha256:${'g'.repeat(64)}`, `${D}\n`, 42, null]) expect(badDigest(bad), String(bad)).toBeDefined();
  });

  it('a DigestingStream names the content it passed, and fails at the end on a mismatch or at once past the size', async () => {
    const data = Buffer.from('x'.repeat(100_000));
    const s = new DigestingStream({ expect: sha256Of(data), size: data.length });
    expect((await collect(sliced(data).pipe(s))).equals(data)).toBe(true);
    expect(s.digest).toBe(sha256Of(data));
    expect(s.bytes).toBe(data.length);
    await expect(collect(sliced(data).pipe(new DigestingStream({ expect: sha256Of('other') })))).rejects.toThrow(`content has digest ${sha256Of(data)}`);
    await expect(collect(sliced(data).pipe(new DigestingStream({ size: 10 })))).rejects.toThrow('more than the 10 bytes expected');
    await expect(collect(sliced(data).pipe(new DigestingStream({ size: data.length + 1 })))).rejects.toThrow(`${data.length} bytes where ${data.length + 1} were expected`);
  });
});
