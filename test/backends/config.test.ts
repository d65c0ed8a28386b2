// Backend configs (src/backends/config.ts): upstream's fields per type, each problem one line
// naming the field; the snapshotter's nydusd v2 wrapper; and the OSS V1 signature of ali-oss
// held against the documented formula (test/helpers/oss-sign.mjs) on fixed requests.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { backendFromFlags, parseBackendConfig } from '../../src/backends/config.js';
import { NydusError } from '../../src/errors.js';
import { canonicalResource, sign, stringToSign } from '../helpers/oss-sign.mjs';

const fail = (f: () => unknown): NydusError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    expect((e as NydusError).message).not.toContain('\n');
    return e as NydusError;
  }
  throw new Error('did not throw');
};

describe('parseBackendConfig', () => {
  it('takes upstream\'s fields and the nydusd v2 wrapper the snapshotter passes', () => {
    const s3 = parseBackendConfig('s3', JSON.stringify({ region: 'r', bucket_name: 'b', endpoint: 'h:1', timeout: 5, proxy: { url: 'x' } }));
    expect(s3).toEqual({ type: 's3', config: { region: 'r', bucket_name: 'b', endpoint: 'h:1', timeout: 5, proxy: { url: 'x' } } });
    const wrapped = parseBackendConfig('http-proxy', JSON.stringify({ version: 2, backend: { type: 'http-proxy', 'http-proxy': { addr: '/run/s.sock' } } }));
    expect(wrapped.config).toEqual({ addr: '/run/s.sock' });
    expect(parseBackendConfig('oss', '{"endpoint":"https://oss.example","bucket_name":"b"}').type).toBe('oss');
  });

  it('refuses each problem in one line naming the field', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['s3', '{', /not valid JSON/],
      ['s3', 'null', /must be a JSON object, not null/],
      ['s3', '{"bucket_name":"b"}', /missing required field "region"/],
      ['s3', '{"region":"r"}', /missing required field "bucket_name"/],
      ['s3', '{"region":"r","bucket_name":""}', /missing required field "bucket_name"/],
      ['s3', '{"region":"r","bucket_name":"b","endpoint":"https://h"}', /field "endpoint" must not carry a scheme/],
      ['s3', '{"region":"r","bucket_name":"b","retry_limit":-1}', /field "retry_limit" must be a non-negative integer/],
      ['s3', '{"region":"r","bucket_name":"b","ca_cert_files":[1]}', /field "ca_cert_files" must be an array of strings/],
      ['oss', '{"endpoint":"ftp://h","bucket_name":"b"}', /scheme other than http or https/],
      ['registry', '{"host":"http://h","repo":"r"}', /field "host" must not carry a scheme/],
      ['localfs', '{"dir":7}', /field "dir" must be a string, not number/],
      ['http-proxy', '{"addr":"relative.sock"}', /field "addr" must be a unix socket path or an http\(s\) URL/],
      ['http-proxy', '{"version":2,"backend":{"type":"s3","s3":{}}}', /field "backend.type" is "s3", but the backend type is http-proxy/],
      ['gcs', '{}', /unknown backend type "gcs"/],
      ['s3', '{"region":"r","bucket_name":"b","Region":"x"}', /unknown field "Region"/],
    ];
    for (const [type, text, want] of cases) expect(fail(() => parseBackendConfig(type, text)).message, `${type} ${text}`).toMatch(want);
  });

  it('the flags: exactly one of --backend-config and --backend-config-file, and only with a type', () => {
    expect(backendFromFlags(undefined, undefined, undefined)).toBeUndefined();
    expect(fail(() => backendFromFlags(undefined, '{}', undefined)).message).toMatch(/needs --backend-type/);
    expect(fail(() => backendFromFlags('s3', '{}', '/x')).message).toMatch(/cannot be used with --backend-config-file/);
    expect(fail(() => backendFromFlags('s3', undefined, undefined)).message).toMatch(/must be specified/);
  });
});

describe('OSS V1 signature', () => {
  // ali-oss's own signer, on the requests of a multipart upload, against the formula of Alibaba
  // Cloud's "Include a V1 signature in the Authorization header" (written out in oss-sign.mjs).
  const signUtils = createRequire(import.meta.url)('ali-oss/lib/common/signUtils.js') as {
    buildCanonicalString(method: string, resource: string, request: { headers: Record<string, string>; parameters?: Record<string, string> | string[] }): string;
    computeSignature(secret: string, text: string): string;
  };
  const date = 'Sun, 22 Nov 2015 08:16:38 GMT';
  const requests: Array<{ method: string; path: string; query: string; headers: Record<string, string>; parameters?: Record<string, string> }> = [
    { method: 'PUT', path: '/examplebucket/nelson', query: '', headers: { 'content-md5': 'eB5eJF1ptWaXm4bijSPyxw==', 'content-type': 'text/html', 'x-oss-date': date, 'x-oss-meta-author': 'foo@example.com', 'x-oss-meta-magic': 'abracadabra' } },
    { method: 'POST', path: '/examplebucket/o/blob', query: 'uploads=', headers: { 'x-oss-date': date }, parameters: { uploads: '' } },
    { method: 'PUT', path: '/examplebucket/o/blob', query: 'partNumber=3&uploadId=0004B9895DBBB6EC98E36', headers: { 'content-type': 'application/octet-stream', 'x-oss-date': date }, parameters: { partNumber: '3', uploadId: '0004B9895DBBB6EC98E36' } },
    { method: 'GET', path: '/examplebucket/o/blob', query: '', headers: { range: 'bytes=0-99', 'x-oss-date': date } },
  ];
  it('ali-oss signs each request exactly as the documented formula does', () => {
    const secret = 'yourAccessKeySecret';
    for (const r of requests) {
      const ours = stringToSign(r.method, canonicalResource(r.path, r.query), r.headers);
      const theirs = signUtils.buildCanonicalString(r.method, r.path, { headers: r.headers, ...(r.parameters ? { parameters: r.parameters } : {}) });
      expect(theirs, `${r.method} ${r.path}?${r.query}`).toBe(ours);
      expect(signUtils.computeSignature(secret, theirs)).toBe(sign(secret, ours));
    }
    // The documented shape, by hand, for the first request.
    expect(stringToSign(requests[0]!.method, canonicalResource(requests[0]!.path, ''), requests[0]!.headers)).toBe(
      `PUT\neB5eJF1ptWaXm4bijSPyxw==\ntext/html\n${date}\nx-oss-date:${date}\nx-oss-meta-author:foo@example.com\nx-oss-meta-magic:abracadabra\n/examplebucket/nelson`,
    );
  });

  it("gives the worked example's published signature (Alibaba Cloud OSS API reference, \"Signature\": PUT /nelson in bucket oss-example)", () => {
    // The example of Alibaba Cloud's OSS API reference (also held by the official aliyun-oss-go-sdk's
    // auth test): its request, its AccessKeySecret, and the signature the document publishes.
    const secret = 'OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV';
    const headers = {
      'content-md5': 'ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=', 'content-type': 'text/html', date: 'Thu, 17 Nov 2005 18:49:58 GMT',
      'x-oss-meta-author': 'foo@bar.com', 'x-oss-magic': 'abracadabra',
    };
    const ours = stringToSign('PUT', canonicalResource('/oss-example/nelson', ''), headers);
    expect(ours).toBe('PUT\nODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=\ntext/html\nThu, 17 Nov 2005 18:49:58 GMT\nx-oss-magic:abracadabra\nx-oss-meta-author:foo@bar.com\n/oss-example/nelson');
    expect(sign(secret, ours)).toBe('26NBxoKdsyly4EDv6inkoDft/yA=');
    // ali-oss's HMAC over the example's string to sign (its canonical-string builder takes the date
    // from x-oss-date, which it always sends: the case the test above holds).
    expect(signUtils.computeSignature(secret, ours)).toBe('26NBxoKdsyly4EDv6inkoDft/yA=');
  });
});
