// A loopback S3 server for tests: s3rver (its filesystem store in argv[2], port argv[3], bucket
// argv[4]) run as its own process so a test can kill it mid-upload, plus the two calls s3rver
// lacks, served from its own upload directory: AbortMultipartUpload (DELETE ?uploadId) and
// ListMultipartUploads (GET /bucket?uploads). With argv[5] = "oss", requests signed the OSS way
// are checked against the documented V1 formula (oss-sign.mjs) and then let through.
import * as fs from 'node:fs';
import * as path from 'node:path';
import S3rver from 's3rver';
import { ossVerify } from './oss-sign.mjs';

const [dir, port, bucket, mode] = process.argv.slice(2);
const uploads = (b) => path.join(dir, b, '._S3rver_uploads');
const xml = (s) => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]);

const server = new S3rver({ port: Number(port), address: '127.0.0.1', directory: dir, silent: true, configureBuckets: [{ name: bucket }], allowMismatchedSignatures: mode === 'oss' });
server.middleware.unshift(async (ctx, next) => {
  if (mode === 'oss') {
    const auth = ctx.get('authorization');
    if (auth.startsWith('OSS ')) {
      const why = ossVerify(ctx.method, ctx.path, ctx.querystring, ctx.headers, 'S3RVER');
      if (why) {
        ctx.status = 403;
        ctx.body = `<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>${xml(why)}</Message></Error>`;
        return;
      }
      process.stdout.write('oss-signature-ok\n');
      // s3rver knows only AWS signatures: the OSS one was checked above.
      ctx.request.headers.authorization = `AWS S3RVER:${auth.slice(auth.indexOf(':') + 1)}`;
      if (ctx.headers['x-oss-date'] && !ctx.headers.date) ctx.request.headers.date = ctx.headers['x-oss-date'];
      // ali-oss names the bucket's virtual host even when it addresses path-style: route by path.
      ctx.request.headers.host = `127.0.0.1:${port}`;
      // The same request in S3's spelling: OSS's x-oss-* headers are S3's x-amz-* ones.
      for (const [k, v] of Object.entries(ctx.headers)) if (k.startsWith('x-oss-')) ctx.request.headers[`x-amz-${k.slice(6)}`] = v;
      // OSS encodes the whole copy source key ("/" as %2F); s3rver decodes only what decodeURI does.
      if (ctx.headers['x-oss-copy-source']) ctx.request.headers['x-amz-copy-source'] = decodeURIComponent(ctx.headers['x-oss-copy-source']);
    }
  }
  const m = /^\/([^/]+)\/?(.*)$/.exec(ctx.path);
  if (ctx.method === 'DELETE' && m && m[2] && 'uploadId' in ctx.query) {
    const d = path.join(uploads(m[1]), String(ctx.query.uploadId));
    if (!fs.existsSync(d)) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    fs.rmSync(d, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  if (ctx.method === 'GET' && m && !m[2] && 'uploads' in ctx.query) {
    const root = uploads(m[1]);
    const ids = fs.existsSync(root) ? fs.readdirSync(root) : [];
    const items = ids.map((id) => `<Upload><Key>${xml(fs.readFileSync(path.join(root, id, 'key'), 'utf8'))}</Key><UploadId>${xml(id)}</UploadId></Upload>`).join('');
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${xml(m[1])}</Bucket><IsTruncated>false</IsTruncated>${items}</ListMultipartUploadsResult>`;
    return;
  }
  await next();
});
await server.run();
process.stdout.write(`listening ${port}\n`);
