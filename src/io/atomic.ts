// Output files that never leave half-written data under their final name: regular files are
// written to a temporary name in the same directory and renamed at the end; an existing FIFO
// (or character device) is written in place, strictly sequentially. Appends are write-behind:
// they run in order on libuv's threads while the caller goes on, bounded by drain().
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsError } from '../errors.js';
import { realPathOf } from './collide.js';

function writeFd(fd: number, data: Uint8Array, off: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, data, off, data.byteLength - off, null, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * Every temporary an OutputFile holds right now. A run interrupted by a signal ends without
 * reaching commit() or abort(); its handler calls removeTemporaries() so none is left behind.
 */
const live = new Set<string>();

/** Removes every live temporary, synchronously (for signal handlers and fatal exits). */
export function removeTemporaries(): void {
  for (const p of live) {
    try {
      fs.rmSync(p, { force: true });
    } catch {
      // Best effort: the process is ending; one that cannot be removed must not stop the others.
    }
  }
  live.clear();
}

/** Paths of the temporaries now live (for tests and messages). */
export function liveTemporaries(): string[] {
  return [...live];
}

export class OutputFile {
  position = 0;
  private closed = false;
  private queue: Promise<void> = Promise.resolve();
  /** Bytes handed to write() that the disk does not have yet. */
  queued = 0;
  private failure?: unknown;
  private waiters: Array<{ limit: number; resolve: () => void }> = [];

  private constructor(
    readonly finalPath: string | undefined,
    private readonly tempPath: string | undefined,
    private readonly fd: number,
  ) {
    if (tempPath) live.add(tempPath);
  }

  /** Opens `target` for sequential writing. */
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

  /** A temp file in `dir`; the final name may also be given to commit(). */
  static temp(dir: string, finalPath?: string): OutputFile {
    const tmp = path.join(dir, `.${path.basename(finalPath ?? 'blob')}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      return new OutputFile(finalPath, tmp, fs.openSync(tmp, 'wx', 0o644));
    } catch (e) {
      throw fsError('OUTPUT', finalPath ?? dir, e);
    }
  }

  /**
   * The descriptor, for a writer that appends to it itself (the blob's writer thread); such
   * writes must be over before commit() or abort().
   */
  get descriptor(): number {
    return this.fd;
  }

  /** The name errors give for this output. */
  get name(): string {
    return this.label;
  }

  /** Whether the bytes go to a temporary name first (not a FIFO or device, which a reader sees at once). */
  get staged(): boolean {
    return this.tempPath !== undefined;
  }

  /** The paths this output occupies (temporary and final), so a source walk can skip them. */
  get paths(): string[] {
    return [this.tempPath, this.finalPath].filter((p): p is string => p !== undefined).map(realPathOf);
  }

  private get label(): string {
    return this.finalPath ?? this.tempPath ?? 'output';
  }

  /** Appends `data`, which must stay unchanged until onWritten is called (or drain() returns). */
  write(data: Uint8Array, onWritten?: () => void): void {
    if (this.failure) throw this.failure;
    const len = data.byteLength;
    if (len === 0) {
      onWritten?.();
      return;
    }
    this.position += len;
    this.queued += len;
    this.queue = this.queue.then(async () => {
      try {
        if (this.failure) return;
        let off = 0;
        while (off < len) off += await writeFd(this.fd, data, off);
      } catch (e) {
        this.failure = fsError('OUTPUT', this.label, e);
      } finally {
        this.queued -= len;
        onWritten?.();
        this.waiters = this.waiters.filter((w) => (this.queued <= w.limit || this.failure ? (w.resolve(), false) : true));
      }
    });
  }

  /** Waits until at most `limit` bytes are still queued; rethrows a write error. */
  async drain(limit = 0): Promise<void> {
    if (this.queued > limit && !this.failure) await new Promise<void>((resolve) => this.waiters.push({ limit, resolve }));
    if (this.failure) throw this.failure;
  }

  /** Writes at an absolute offset, synchronously (only for regular files: the blob-cache data file). */
  writeAt(data: Uint8Array, position: number): void {
    let off = 0;
    try {
      while (off < data.byteLength) off += fs.writeSync(this.fd, data, off, data.byteLength - off, position + off);
    } catch (e) {
      throw fsError('OUTPUT', this.label, e);
    }
  }

  truncate(length: number): void {
    fs.ftruncateSync(this.fd, length);
  }

  /**
   * Finishes the writes, closes, and moves the temp file to its final name. With keepExisting,
   * an existing file of that name is left alone, as upstream does for content-addressed names.
   */
  async commit(finalPath = this.finalPath, keepExisting = false): Promise<void> {
    await this.drain();
    this.close();
    if (!this.tempPath) return;
    if (!finalPath) throw new Error('commit of a temp output without a final name');
    try {
      if (keepExisting && fs.existsSync(finalPath)) fs.unlinkSync(this.tempPath);
      else fs.renameSync(this.tempPath, finalPath);
      live.delete(this.tempPath);
    } catch (e) {
      throw fsError('OUTPUT', finalPath, e);
    }
  }

  /** Stops, closes and removes the temp file; safe to call more than once. */
  async abort(): Promise<void> {
    this.failure ??= new Error('aborted');
    await this.queue;
    this.close();
    if (this.tempPath) {
      fs.rmSync(this.tempPath, { force: true });
      live.delete(this.tempPath);
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

/** Writes a whole buffer to `target` atomically (temp name + rename, or in place for a FIFO). */
export async function writeFileAtomic(target: string, data: Uint8Array): Promise<void> {
  const out = OutputFile.open(target);
  try {
    out.write(data);
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}
