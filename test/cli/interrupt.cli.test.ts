// Ctrl-C and SIGTERM in the middle of a run: create (-D, -b, --blob-cache-dir, from stdin,
// tar-tarfs) and export leave no `.*.tmp` in any output directory, print one line, and end by
// that signal (a shell's $? is 130 / 143). The runs are held in progress by a tar fed through a
// FIFO (or stdin) that never ends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import tar from 'tar-stream';
import { BIN, REPO, nydusImageOk } from './cli-runner.js';
import { runOk } from '../helpers/tools.js';

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-interrupt-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Ended by the signal itself (how the shell's 130 / 143 comes about), or exited with that code. */
function interruptedBy(r: { code: number | null; signal: NodeJS.Signals | null }, signal: NodeJS.Signals, code: number): boolean {
  return r.signal === signal || r.code === code;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Names of temporaries (`.*.tmp`) in the directories. */
async function temporaries(dirs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) for (const n of await readdir(d)) if (n.startsWith('.') && n.endsWith('.tmp')) out.push(join(d, n));
  return out;
}

/** Waits until some temporary exists in the directories (the run is writing). */
async function waitForTemporary(dirs: string[], child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if ((await temporaries(dirs)).length > 0) return;
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before writing: ${stderr()}`);
    await sleep(10);
  }
  throw new Error(`no temporary appeared in ${dirs.join(', ')}: ${stderr()}`);
}

/** Starts a tar of one 64 MiB member and writes 2 MiB of it: the reader then waits for more. */
function startTar(into: Writable): void {
  const pack = tar.pack();
  pack.on('error', () => {});
  pack.pipe(into);
  const entry = pack.entry({ name: 'big', size: 64 << 20, mode: 0o644, mtime: new Date(0) });
  // The run is killed with the member unfinished: the stream's complaint is expected.
  entry.on('error', () => {});
  entry.write(Buffer.alloc(2 << 20, 7));
}

interface Case {
  name: string;
  args: (d: { dir: string; fifo: string }) => string[];
  /** Directories outputs go to (the case's dir is always watched). */
  dirs: (d: { dir: string }) => string[];
  stdin?: boolean;
}

const CASES: Case[] = [
  { name: '-D', args: ({ dir, fifo }) => ['create', '-t', 'tar-rafs', '-B', join(dir, 'boot'), '-D', join(dir, 'blobs'), fifo], dirs: ({ dir }) => [join(dir, 'blobs')] },
  { name: '-b', args: ({ dir, fifo }) => ['create', '-t', 'tar-rafs', '-B', join(dir, 'boot'), '-b', join(dir, 'out', 'blob'), fifo], dirs: ({ dir }) => [join(dir, 'out')] },
  { name: '--blob-cache-dir', args: ({ dir, fifo }) => ['create', '-t', 'tar-rafs', '-B', join(dir, 'boot'), '--blob-cache-dir', join(dir, 'cache'), fifo], dirs: ({ dir }) => [join(dir, 'cache')] },
  { name: 'stdin', args: ({ dir }) => ['create', '-t', 'tar-rafs', '-B', join(dir, 'boot'), '-D', join(dir, 'blobs'), '-'], dirs: ({ dir }) => [join(dir, 'blobs')], stdin: true },
  { name: 'tar-tarfs', args: ({ dir, fifo }) => ['create', '-t', 'tar-tarfs', '-B', join(dir, 'boot'), '--blob-id', 'layer', '-D', join(dir, 'blobs'), fifo], dirs: ({ dir }) => [join(dir, 'blobs')] },
];

describe('an interrupted create leaves no temporary', () => {
  for (const c of CASES) {
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      it(`${c.name}, ${signal}: exit ${code}, no .*.tmp`, async () => {
        const dir = await mkdtemp(join(work, 'c-'));
        for (const d of ['blobs', 'out', 'cache']) await mkdir(join(dir, d));
        const fifo = join(dir, 'in.fifo');
        await runOk('mkfifo', [fifo]);
        const child = spawn(process.execPath, [BIN, ...c.args({ dir, fifo })], { cwd: REPO, stdio: ['pipe', 'ignore', 'pipe'] });
        let err = '';
        child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig })));
        child.stdin!.on('error', () => {});
        const feed = c.stdin ? child.stdin! : createWriteStream(fifo);
        feed.on('error', () => {});
        startTar(feed);
        const dirs = [dir, ...c.dirs({ dir })];
        try {
          await waitForTemporary(dirs, child, () => err);
          await sleep(100);
          child.kill(signal);
          expect(interruptedBy(await exited, signal, code), err).toBe(true);
          expect(await temporaries(dirs)).toEqual([]);
          expect(err.trim().split('\n'), err).toEqual([`Error: interrupted by ${signal}`]);
        } finally {
          child.kill('SIGKILL');
          feed.destroy();
        }
      }, 30_000);
    }
  }
});

describe('an interrupted export leaves no temporary', () => {
  let boot = '';
  let blobs = '';

  beforeAll(async () => {
    // 256 chunks of 1 MiB, each different but nearly all zeros: a small blob whose disk takes
    // long enough to write to be interrupted.
    const src = join(work, 'zeros');
    await mkdir(src);
    const data = Buffer.alloc(256 << 20);
    for (let i = 0; i < 256; i++) data.writeUInt32LE(i + 1, i << 20);
    await writeFile(join(src, 'z'), data);
    blobs = join(work, 'export-blobs');
    await mkdir(blobs);
    boot = join(work, 'export.boot');
    await nydusImageOk(['create', '-B', boot, '-D', blobs, src]);
  }, 60_000);

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal}: exit ${code}, no .*.tmp`, async () => {
      const out = await mkdtemp(join(work, 'disk-'));
      const child = spawn(process.execPath, [BIN, 'export', '--block', '-B', boot, '-D', blobs, '-O', join(out, 'disk')], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig })));
      try {
        await waitForTemporary([out], child, () => err);
        child.kill(signal);
        expect(interruptedBy(await exited, signal, code), err).toBe(true);
        expect(await readdir(out)).toEqual([]);
      } finally {
        child.kill('SIGKILL');
      }
    }, 30_000);
  }
});
