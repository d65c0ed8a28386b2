// The kernel as a judge: loop devices and read-only EROFS mounts, always torn down.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTool, run, runOk } from './tools.js';

/** Whether this process can attach loop devices and mount EROFS; why not when it cannot. */
export function kernelSupport(): { ok: boolean; why?: string } {
  if (process.platform !== 'linux') return { ok: false, why: `platform is ${process.platform}, not linux` };
  if (process.getuid?.() !== 0) return { ok: false, why: 'not running as root' };
  let filesystems: string;
  try {
    filesystems = readFileSync('/proc/filesystems', 'utf8');
  } catch {
    return { ok: false, why: '/proc/filesystems is unreadable' };
  }
  if (!filesystems.split('\n').some((l) => l.trim().split(/\s+/).pop() === 'erofs')) {
    return { ok: false, why: 'erofs is not in /proc/filesystems (module not loaded or not built)' };
  }
  for (const tool of ['losetup', 'mount', 'umount']) {
    if (!hasTool(tool)) return { ok: false, why: `${tool} is not on PATH` };
  }
  if (!existsSync('/dev/loop-control')) return { ok: false, why: '/dev/loop-control is missing' };
  return { ok: true };
}

/** The part of vitest's test context that skipLoudly needs. */
export interface SkipContext {
  task: { name: string };
  skip(note?: string): never;
}

/** Prints a line nobody can miss, then skips the test (vitest's ctx.skip throws). */
export function skipLoudly(ctx: SkipContext, why: string): never {
  const line = `SKIPPED (${why}): ${ctx.task.name}`;
  const bar = '!'.repeat(Math.min(line.length, 100));
  process.stderr.write(`\n${bar}\n${line}\n${bar}\n`);
  return ctx.skip(why);
}

export interface LoopDevice {
  dev: string;
  detach(): Promise<void>;
}

/** Attaches a file to a free loop device, read-only. */
export async function attachLoop(file: string): Promise<LoopDevice> {
  const r = await runOk('losetup', ['--find', '--show', '--read-only', file]);
  const dev = r.stdout.toString().trim();
  if (!dev.startsWith('/dev/')) throw new Error(`losetup printed no device for ${file}: ${JSON.stringify(dev)}`);
  let detached = false;
  return {
    dev,
    async detach() {
      if (detached) return;
      detached = true;
      await detachWithRetry(dev);
    },
  };
}

async function detachWithRetry(dev: string): Promise<void> {
  // A device just unmounted can stay busy for a moment.
  let last = '';
  for (let i = 0; i < 20; i++) {
    const r = await run('losetup', ['-d', dev]);
    if (r.code === 0) return;
    last = r.stderr.toString().trim();
    if (/No such device|not a block device|No such file|failed to use device/i.test(last)) return;
    await sleep(50 * (i + 1));
  }
  throw new Error(`losetup -d ${dev}: ${last}`);
}

export interface Mounted {
  dir: string;
  unmount(): Promise<void>;
}

export interface MountOptions {
  /** Extra block devices, in device-table order, passed as -o device=… */
  devices?: readonly string[];
  /** Attach the image to a loop device first (detached again by unmount). Without it mount(8) gets
   *  the path as is: a block device, or a file it loops itself (auto-clearing on umount). */
  loop?: boolean;
}

/** Mounts an EROFS image read-only on a fresh temporary directory. */
export async function mountErofs(image: string, opts: MountOptions = {}): Promise<Mounted> {
  const dir = await mkdtemp(join(tmpdir(), 'nydus-mnt-'));
  let loop: LoopDevice | undefined;
  try {
    if (opts.loop) loop = await attachLoop(image);
    const options = ['ro', ...(opts.devices ?? []).map((d) => `device=${d}`)].join(',');
    await runOk('mount', ['-t', 'erofs', '-o', options, loop ? loop.dev : image, dir]);
  } catch (e) {
    await cleanup([() => loop?.detach(), () => rmdir(dir)]);
    throw e;
  }
  let done = false;
  return {
    dir,
    async unmount() {
      if (done) return;
      done = true;
      await cleanup([() => umountWithRetry(dir), () => loop?.detach(), () => rmdir(dir)]);
    },
  };
}

async function umountWithRetry(dir: string): Promise<void> {
  let last = '';
  for (let i = 0; i < 20; i++) {
    const r = await run('umount', [dir]);
    if (r.code === 0) return;
    last = r.stderr.toString().trim();
    if (/not mounted/i.test(last)) return;
    await sleep(50 * (i + 1));
  }
  throw new Error(`umount ${dir}: ${last}`);
}

/** Runs every step even when earlier ones fail; throws the first failure afterwards. */
async function cleanup(steps: Array<() => Promise<void> | undefined>): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw errors[0];
}

/**
 * Attaches each blob data file to a loop device, mounts the bootstrap with them as device=…,
 * runs fn on the mount directory, and tears everything down whatever happens.
 */
export async function withMountedImage<T>(
  boot: string,
  blobDataFiles: readonly string[],
  fn: (mountDir: string) => Promise<T> | T,
): Promise<T> {
  const loops: LoopDevice[] = [];
  let mounted: Mounted | undefined;
  let result: T;
  try {
    for (const f of blobDataFiles) loops.push(await attachLoop(f));
    mounted = await mountErofs(boot, { loop: true, devices: loops.map((l) => l.dev) });
    result = await fn(mounted.dir);
  } catch (e) {
    // The test's own failure matters more than a teardown failure it may have caused.
    await cleanup([() => mounted?.unmount(), ...loops.map((l) => () => l.detach())]).catch(() => {});
    throw e;
  }
  await cleanup([() => mounted?.unmount(), ...loops.map((l) => () => l.detach())]);
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
