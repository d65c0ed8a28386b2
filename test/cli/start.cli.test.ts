// What the CLI and the library load before they work (issue 14: the CLI reaches the build
// quickly). A `--import` hook (Node's module.register, in the child) lists every module the
// process loads, ES modules and CommonJS alike; the lists must hold what the work needs and
// nothing of what it does not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../helpers/tools.js';
import { BIN, REPO } from './cli-runner.js';

let work = '';
let hook = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-start-'));
  await mkdir(join(work, 'empty'));
  hook = join(work, 'hook.mjs');
  // ES modules through a load hook; CommonJS from require's cache at exit. Written to $MODULES_OUT.
  await writeFile(hook, `
import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
const out = process.env.MODULES_OUT;
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (!url.startsWith('node:')) appendFileSync(\${JSON.stringify(process.env.MODULES_OUT)}, url + '\\\\n');
  return next(url, context);
}\`));
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => appendFileSync(out, Object.keys(cache).join('\\n') + '\\n'));
`);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * Runs node with the hook; returns the modules it loaded (paths or URLs, one each). The bins run
 * a command from the build's bundle, where our modules are not files of their own: NYDUS_DEBUG
 * (set unless `bundle`) makes them load the modules themselves, whose names the lists can show.
 */
async function loaded(name: string, args: string[], bundle = false): Promise<string[]> {
  const out = join(work, `${name}.modules`);
  const env: NodeJS.ProcessEnv = { ...process.env, MODULES_OUT: out, NYDUS_DEBUG: bundle ? undefined : '1' };
  const r = await run(process.execPath, ['--import', hook, ...args], { cwd: REPO, env, timeoutMs: 120_000 });
  expect(r.code, r.stderr.toString()).toBe(0);
  return (await readFile(out, 'utf8')).split('\n').filter((l) => l.length > 0);
}

const has = (mods: string[], part: string) => mods.some((m) => m.includes(part));

describe('what starting loads', () => {
  it('create of a directory loads the build, and not oclif\'s Config, the readers, RAFS v5, compaction, --output-json, the registry or backend clients', async () => {
    const mods = await loaded('create', [BIN, 'create', '-l', 'warn', '-B', join(work, 'boot'), '-b', join(work, 'blob'), join(work, 'empty')]);
    for (const needed of ['/dist/commands/create.js', '/dist/builder/create.js', '/dist/sources/dir.js', '/dist/bootstrap/emit.js', '@oclif/core']) {
      expect(has(mods, needed), needed).toBe(true);
    }
    // oclif's Config.load probes the platform through wsl-utils: the launcher runs a command without it.
    expect(has(mods, '/wsl-utils/'), 'wsl-utils').toBe(false);
    // oclif by the parts the commands use: not its index, which loads its runner and all the rest.
    for (const unneeded of ['@oclif/core/lib/index.js', '@oclif/core/lib/main.js', '@oclif/core/lib/execute.js']) expect(has(mods, unneeded), unneeded).toBe(false);
    for (const unneeded of ['/dist/read/open.js', '/dist/read/v6.js', '/dist/bootstrap/v5.js', '/dist/builder/compact.js', '/dist/builder/output-json.js', '/dist/oci/', '/undici/', '@aws-sdk', 'ali-oss', 'zstd-napi', 'lz4-napi']) {
      expect(has(mods, unneeded), unneeded).toBe(false);
    }
  });

  it('a command runs from the bundle the build makes: no module of ours loads on its own, and the packages still load only when used', async () => {
    const mods = await loaded('create-bundle', [BIN, 'create', '-l', 'warn', '-B', join(work, 'boot-b'), '-b', join(work, 'blob-b'), join(work, 'empty')], true);
    expect(has(mods, '/dist/bundle/direct.js')).toBe(true);
    const ours = mods.filter((m) => m.includes('/dist/') && !m.includes('/dist/bundle/') && !m.includes('/node_modules/'));
    // launch.ts and the command table it reads the ids from.
    expect(ours.map((m) => m.slice(m.indexOf('/dist/'))).sort()).toEqual(['/dist/cli/commands.js', '/dist/cli/launch.js']);
    for (const unneeded of ['/undici/', '@aws-sdk', 'ali-oss', 'zstd-napi', 'lz4-napi']) expect(has(mods, unneeded), unneeded).toBe(false);
    // Fewer files than the modules behind them: the bundle's point.
    const unbundled = await loaded('create-modules', [BIN, 'create', '-l', 'warn', '-B', join(work, 'boot-m'), '-b', join(work, 'blob-m'), join(work, 'empty')]);
    expect(mods.length).toBeLessThan(unbundled.length / 2);
  });

  it('check of an image loads no pipeline (the plugin loader takes it only for a --plugin); --help still goes through oclif', async () => {
    const boot = join(work, 'check-boot');
    const c = await run(process.execPath, [BIN, 'create', '-l', 'warn', '-B', boot, '-b', join(work, 'check-blob'), join(work, 'empty')], { cwd: REPO });
    expect(c.code, c.stderr.toString()).toBe(0);
    const mods = await loaded('check', [BIN, 'check', '-B', boot]);
    expect(has(mods, '/dist/commands/check.js')).toBe(true);
    expect(has(mods, '/dist/pipeline/compose.js')).toBe(false);
    expect(has(mods, 'piscina')).toBe(false);
    const help = await loaded('check-help', [BIN, 'check', '--help']);
    expect(has(help, '/wsl-utils/')).toBe(true);
  });

  it('the library loads the registry client only when a registry function is called', async () => {
    const lib = join(REPO, 'dist', 'index.js');
    const bare = await loaded('lib', ['--input-type=module', '-e', `const m = await import(${JSON.stringify(lib)}); if (typeof m.convert !== 'function') process.exit(3);`]);
    expect(has(bare, '/dist/builder/create.js')).toBe(true);
    expect(has(bare, '/dist/oci/')).toBe(false);
    expect(has(bare, '/undici/')).toBe(false);
    // A call loads it: copy of an image from a registry nobody listens on fails, after loading.
    const called = await loaded('lib-called', ['--input-type=module', '-e', `const m = await import(${JSON.stringify(lib)}); await m.copy({ source: '127.0.0.1:9/a:b', target: '127.0.0.1:9/c:d' }).catch(() => undefined);`]);
    expect(has(called, '/dist/oci/copy.js')).toBe(true);
    expect(has(called, '/undici/')).toBe(true);
  });
});
