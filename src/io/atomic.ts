// Output files that never leave half-written data under their final name: regular files are
// written to a temporary name in the same directory and renamed at the end; an existing FIFO
// (or character device) is written in place, strictly sequentially.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsError } from '../errors.js';

export class OutputFile {
  position = 0;
  private closed = false;

  private constructor(
    readonly finalPath: string | undefined,
    private readonly tempPath: string | undefined,
    private readonly fd: number,
  ) {}

  /** Opens `target` for sequential writing; with `dir` and no target, a temp file in dir named at commit. */
  static open(target: string): OutputFile {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(target);
    } catch {
      st = undefined;
    }
    if (st && (st.isFIFO() || st.isCharacterDevice())) {
      try {
        return new OutputFile(undefined, undefined, fs.openSync(target, fs.constants.O_WRONLY));
      } catch (e) {
        throw fsError('OUTPUT', target, e);
      }
    }
    return OutputFile.temp(path.dirname(target), target);
  }

  /** A temp file in `dir`; give the final name to commit(). */
  static temp(dir: string, finalPath?: string): OutputFile {
    const tmp = path.join(dir, `.${path.basename(finalPath ?? 'blob')}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      return new OutputFile(finalPath, tmp, fs.openSync(tmp, 'wx', 0o644));
    } catch (e) {
      throw fsError('OUTPUT', finalPath ?? dir, e);
    }
  }

  write(data: Uint8Array): void {
    let off = 0;
    try {
      while (off < data.byteLength) off += fs.writeSync(this.fd, data, off, data.byteLength - off);
    } catch (e) {
      throw fsError('OUTPUT', this.finalPath ?? this.tempPath ?? 'output', e);
    }
    this.position += data.byteLength;
  }

  /** Writes at an absolute offset (only for regular files: the blob-cache data file). */
  writeAt(data: Uint8Array, position: number): void {
    let off = 0;
    try {
      while (off < data.byteLength) off += fs.writeSync(this.fd, data, off, data.byteLength - off, position + off);
    } catch (e) {
      throw fsError('OUTPUT', this.finalPath ?? this.tempPath ?? 'output', e);
    }
  }

  truncate(length: number): void {
    fs.ftruncateSync(this.fd, length);
  }

  /**
   * Closes and moves the temp file to its final name (or `finalPath`). With keepExisting, an
   * existing file of that name is left alone, as upstream does for content-addressed names.
   */
  commit(finalPath = this.finalPath, keepExisting = false): void {
    this.close();
    if (!this.tempPath) return;
    if (!finalPath) throw new Error('commit of a temp output without a final name');
    try {
      if (keepExisting && fs.existsSync(finalPath)) fs.unlinkSync(this.tempPath);
      else fs.renameSync(this.tempPath, finalPath);
    } catch (e) {
      throw fsError('OUTPUT', finalPath, e);
    }
  }

  /** Closes and removes the temp file; safe to call more than once. */
  abort(): void {
    this.close();
    if (this.tempPath) fs.rmSync(this.tempPath, { force: true });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

/** Writes a whole buffer to `target` atomically (temp name + rename, or in place for a FIFO). */
export function writeFileAtomic(target: string, data: Uint8Array): void {
  const out = OutputFile.open(target);
  try {
    out.write(data);
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}
