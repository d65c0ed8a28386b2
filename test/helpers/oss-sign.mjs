// The OSS V1 request signature, written from Alibaba Cloud's document "Include a V1 signature in
// the Authorization header" (OSS developer reference), independently of ali-oss:
//   Authorization = "OSS " + AccessKeyId + ":" + Signature
//   Signature = base64(hmac-sha1(AccessKeySecret, VERB + "\n" + Content-MD5 + "\n" + Content-Type
//               + "\n" + Date + "\n" + CanonicalizedOSSHeaders + CanonicalizedResource))
// The Date line is x-oss-date when the request has one, else Date ("x-oss-date takes precedence").
// CanonicalizedOSSHeaders: x-oss-* headers, names lowercased, sorted, "name:value\n" each.
// CanonicalizedResource: "/" + bucket + "/" + object, then the sub-resources of the query
// (sorted; "k=v" or "k"), after "?" joined by "&".
import { createHmac } from 'node:crypto';

/** The sub-resources the documentation lists as signed (those our flows use and more). */
const SUBRESOURCES = new Set(['acl', 'uploads', 'location', 'cors', 'logging', 'website', 'referer', 'lifecycle', 'delete', 'append', 'tagging', 'objectMeta', 'uploadId', 'partNumber', 'security-token', 'position', 'img', 'style', 'styleName', 'replication', 'replicationProgress', 'replicationLocation', 'cname', 'bucketInfo', 'comp', 'qos', 'live', 'status', 'vod', 'startTime', 'endTime', 'symlink', 'x-oss-process', 'response-content-type', 'response-content-language', 'response-expires', 'response-cache-control', 'response-content-disposition', 'response-content-encoding', 'udf', 'udfName', 'udfImage', 'udfId', 'udfImageDesc', 'udfApplication', 'udfApplicationLog', 'restore', 'callback', 'callback-var', 'policy', 'stat', 'encryption', 'versions', 'versioning', 'versionId', 'sequential', 'continuation-token', 'regionList', 'cloudboxes', 'inventory', 'inventoryId', 'worm', 'wormId', 'wormExtend']);

export function stringToSign(method, resource, headers) {
  const h = (n) => headers[n] ?? '';
  const oss = Object.keys(headers).map((k) => k.toLowerCase()).filter((k) => k.startsWith('x-oss-')).sort().map((k) => `${k}:${String(headers[k]).trim()}\n`).join('');
  // "Date: ... from the Date or x-oss-date header; x-oss-date takes precedence" (the same document).
  return `${method}\n${h('content-md5')}\n${h('content-type')}\n${headers['x-oss-date'] ?? h('date')}\n${oss}${resource}`;
}

export function sign(secret, text) {
  return createHmac('sha1', secret).update(text, 'utf8').digest('base64');
}

/** The canonical resource of a path-style request path and its raw query string. */
export function canonicalResource(pathname, query) {
  const params = query ? query.split('&').map((kv) => kv.split('=').map(decodeURIComponent)).filter(([k]) => SUBRESOURCES.has(k)) : [];
  params.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const sub = params.map(([k, v]) => (v === undefined || v === '' ? k : `${k}=${v}`)).join('&');
  return `${decodeURIComponent(pathname)}${sub ? `?${sub}` : ''}`;
}

/** Undefined when the request's Authorization is the documented signature with `secret`, else why not. */
export function ossVerify(method, pathname, query, headers, secret) {
  const auth = headers.authorization ?? '';
  const given = auth.slice(auth.indexOf(':') + 1);
  const text = stringToSign(method, canonicalResource(pathname, query), headers);
  const want = sign(secret, text);
  return want === given ? undefined : `signature ${given} is not ${want} (string to sign ${JSON.stringify(text)})`;
}
