// A real S3 server on 127.0.0.1 for tests (s3-server.mjs: s3rver in its own process, plus the
// abort and list calls it lacks), with an AWS SDK client on it to look at what was stored.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, HeadObjectCommand, ListObjectsV2Command, ListMultipartUploadsCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { freePort } from './registry.js';

export interface S3Server {
  port: number;
  bucket: string;
  dir: string;
  /** Requests the server saw whose OSS signature matched the documented formula ("oss" mode). */
  ossSignaturesOk: number;
  /** Our backend's config for this server. */
  config(extra?: Record<string, unknown>): Record<string, unknown>;
  client: S3Client;
  /** Keys of the bucket's objects. */
  keys(): Promise<string[]>;
  /** Multipart uploads still open: {key, id}. */
  uploads(): Promise<Array<{ key: string; id: string }>>;
  exists(key: string): Promise<boolean>;
  get(key: string): Promise<Buffer>;
  /** SIGKILL, as a crash. */
  kill(): void;
  /** Starts it again on the same port and directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const HELPER = new URL('./s3-server.mjs', import.meta.url).pathname;

export async function startS3(o: { bucket?: string; mode?: 'oss'; port?: number } = {}): Promise<S3Server> {
  const bucket = o.bucket ?? 'nydus-blobs';
  const dir = await mkdtemp(join(tmpdir(), 's3rver-'));
  const port = o.port ?? (await freePort());
  let child: ChildProcess | undefined;
  const state = { ossSignaturesOk: 0 };
  const launch = () => new Promise<void>((resolve, reject) => {
    const c = spawn(process.execPath, [HELPER, dir, String(port), bucket, o.mode ?? ''], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let err = '';
    c.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    c.stdout!.setEncoding('utf8');
    let buf = '';
    c.stdout!.on('data', (s: string) => {
      buf += s;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('listening')) resolve();
        if (line === 'oss-signature-ok') state.ossSignaturesOk++;
      }
    });
    c.once('exit', (code) => reject(new Error(`s3 server exited (${code}): ${err}`)));
  });
  await launch();
  const client = new S3Client({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  const server: S3Server = {
    port, bucket, dir,
    get ossSignaturesOk() {
      return state.ossSignaturesOk;
    },
    config: (extra = {}) => ({ endpoint: `127.0.0.1:${port}`, scheme: 'http', region: 'us-east-1', bucket_name: bucket, access_key_id: 'S3RVER', access_key_secret: 'S3RVER', ...extra }),
    client,
    async keys() {
      const r = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (r.Contents ?? []).map((c) => c.Key!);
    },
    async uploads() {
      const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (r.Uploads ?? []).map((u) => ({ key: u.Key!, id: u.UploadId! }));
    },
    async exists(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch {
        return false;
      }
    },
    async get(key) {
      const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    },
    kill() {
      child?.removeAllListeners('exit');
      child?.kill('SIGKILL');
    },
    restart: launch,
    async stop() {
      client.destroy();
      if (child && child.exitCode === null) {
        child.removeAllListeners('exit');
        const gone = new Promise((r) => child!.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
