// localfs (spec §4.2, §4.4): objects are files `<dir>/<blob id>`, or the one file `blob_file`.
// Writes go to a temporary name in the same directory and are renamed when whole.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { NydusError, fsError } from '../errors.js';
import { OutputFile } from '../io/atomic.js';
import { badBlobId } from '../format/limits.js';
import { str, type BackendConfig } from './config.js';
import type { Backend, BlobUpload } from './types.js';

export class LocalFsBackend implements Backend {
  readonly type = 'localfs' as const;
  private readonly dir: string;
  private readonly blobFile: string;

  constructor(config: BackendConfig, role: 'read' | 'write' = 'read') {
    this.dir = str(config, 'dir');
    this.blobFile = str(config, 'blob_file');
    const target = this.blobFile ? path.dirname(path.resolve(this.blobFile)) : this.dir;
    let st: fs.Stats;
    try {
      st = fs.statSync(target);
    } catch (e) {
      throw fsError(role === 'write' ? 'OUTPUT' : 'SOURCE', target, e);
    }
    if (!st.isDirectory()) throw new NydusError('USAGE', `backend config (localfs): field "${this.blobFile ? 'blob_file' : 'dir'}": ${target} is not a directory`);
  }

  private file(id: string): string {
    if (this.blobFile) return this.blobFile;
    const bad = badBlobId(id);
    if (bad) throw new NydusError('FORMAT', `blob id: ${bad}`);
    return path.join(this.dir, id);
  }

  where(id: string): string {
    return this.file(id);
  }

  async size(id: string): Promise<number | undefined> {
    try {
      const st = await fs.promises.stat(this.file(id));
      return st.isFile() ? st.size : undefined;
    } catch {
      return undefined;
    }
  }

  async exists(id: string): Promise<boolean> {
    return (await this.size(id)) !== undefined;
  }

  async get(id: string): Promise<Readable> {
    const f = this.file(id);
    try {
      await fs.promises.access(f, fs.constants.R_OK);
    } catch (e) {
      throw fsError('SOURCE', f, e);
    }
    return fs.createReadStream(f);
  }

  async rangeGet(id: string, offset: number, length: number): Promise<Buffer> {
    const f = this.file(id);
    const out = Buffer.alloc(length);
    let fh: fs.promises.FileHandle | undefined;
    try {
      fh = await fs.promises.open(f, 'r');
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new NydusError('SOURCE', `asked for ${length} bytes at ${offset}, the file ends after ${done}`, { path: f });
        done += bytesRead;
      }
    } catch (e) {
      throw e instanceof NydusError ? e : fsError('SOURCE', f, e);
    } finally {
      await fh?.close();
    }
    return out;
  }

  put(knownId?: string): BlobUpload {
    const out = this.blobFile ? OutputFile.open(this.blobFile) : OutputFile.temp(this.dir);
    void knownId;
    let size = 0;
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        out.write(chunk);
        out.drain(4 << 20).then(() => cb(), (e: unknown) => cb(e as Error));
      },
    });
    return {
      stream,
      commit: async (id, force) => {
        const target = this.file(id);
        const exists = !this.blobFile && fs.existsSync(target);
        await out.commit(target, exists && !force);
        return { size, skipped: exists && !force };
      },
      abort: async () => {
        if (!stream.destroyed) stream.destroy();
        await out.abort();
      },
    };
  }

  async close(): Promise<void> {}
}
