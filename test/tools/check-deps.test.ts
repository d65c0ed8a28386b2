// `npm run lint:deps` (test/tools/check-deps.js): this repository's package.json declares no
// package that nothing uses; on a repository made here, the unused ones are named and the exit is
// 1, while imports of every form, binaries run by scripts and @types of used packages count as used.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../cli/cli-runner.js';
import { run } from '../helpers/tools.js';

const SCRIPT = join(REPO, 'test', 'tools', 'check-deps.js');
let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'check-deps-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A repository at `dir` with that package.json, node_modules package.json files and code files. */
async function repo(dir: string, manifest: object, files: Record<string, string>): Promise<string> {
  await mkdir(dir);
  await writeFile(join(dir, 'package.json'), JSON.stringify(manifest));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

/** A quoted specifier, spliced in so that this file's own text holds no import the checker would count. */
const q = (spec: string) => `'${spec}'`;

const checkDeps = (root?: string) => run(process.execPath, [SCRIPT, ...(root ? ['--root', root] : [])], { timeoutMs: 60_000 });

describe('check-deps', () => {
  it('this repository: every declared package is used (npm run lint:deps passes)', async () => {
    const r = await checkDeps();
    expect(r.stderr.toString()).not.toMatch(/never used/);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/all \d+ declared packages are used/);
  });

  it('names exactly the unused packages and exits 1; every form of use counts', async () => {
    const deps = {
      'used-static': '1', '@scope/used-dynamic': '1', 'used-require': '1', 'used-loader': '1', 'used-bin': '1',
      'unused-c': '1', '@types/used-static': '1', '@types/node': '1', '@types/gone': '1', 'ali-oss': '1', 'node-gyp': '1',
    };
    const dir = await repo(join(work, 'a'), { dependencies: deps, scripts: { build: 'binny --x && echo done' } }, {
      'src/a.ts': `import x from ${q('used-static')};\nimport { y } from ${q('node:fs')};\nconst z = await import(${q('@scope/used-dynamic/deep/path.js')});\n`,
      'bench/b.cjs': `const r = require(${q('used-require')});\n`,
      'test/c.test.ts': `await run(process.execPath, [${q('--import')}, ${q('used-loader')}, 'x.ts']);\n// 'unused-c' named in a string is not an import\n`,
      'node_modules/used-bin/package.json': JSON.stringify({ bin: { binny: 'cli.js' } }),
      'node_modules/unused-c/package.json': JSON.stringify({ bin: 'cli.js' }),
    });
    const r = await checkDeps(dir);
    expect(r.code).toBe(1);
    expect(r.stderr.toString().trim()).toBe('check-deps: declared in package.json but never used: @types/gone, ali-oss, node-gyp, unused-c');
  });

  it('exits 0 once they are gone', async () => {
    const dir = await repo(join(work, 'b'), { devDependencies: { 'used-static': '1', 'ali-oss': '1', 'node-gyp': '1' } }, {
      'examples/e.mjs': `import OSS from ${q('ali-oss')};\nexport { default } from ${q('used-static')};\n`,
      'binding.gyp': '{}',
    });
    const r = await checkDeps(dir);
    expect(r.code).toBe(0);
    expect(r.stderr.toString()).toBe('');
    expect(r.stdout.toString().trim()).toBe('check-deps: all 3 declared packages are used');
  });
});
