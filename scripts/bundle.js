#!/usr/bin/env node
// `npm run build`, after tsc: bundles dist/cli/direct.js (every command, and oclif with what it
// needs) into dist/bundle/, which launch.ts loads for a command line: a few files instead of ~180
// modules resolved and compiled one by one (~40 ms of each start). Each command's code is a chunk
// of its own, loaded when the command runs. Our own dependencies stay packages (the SDKs, the
// pool, the native codecs load only when used), and every module of ours still sees its own
// location in import.meta.url (workers, the addon and package.json are found from there).
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const out = path.join(dist, 'bundle');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
// oclif is bundled; so is what it loads, which is why it is not among these.
const kept = new Set(Object.keys(pkg.dependencies).filter((d) => d !== '@oclif/core'));

/** A bare specifier's package name. */
const packageOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);

const plugins = [
  {
    name: 'own-import-meta-url',
    setup(b) {
      // The bundle's files sit in dist/bundle/: `__distRoot` (see the banner) is dist/.
      b.onLoad({ filter: /\.js$/ }, async (args) => {
        if (!args.path.startsWith(dist + path.sep)) return undefined;
        const source = await fs.promises.readFile(args.path, 'utf8');
        const at = JSON.stringify(path.relative(dist, args.path).split(path.sep).join('/'));
        return { contents: source.replaceAll('import.meta.url', `new URL(${at}, __distRoot).href`), loader: 'js' };
      });
    },
  },
  {
    name: 'kept-packages',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        // oclif reaches for ts-node and typescript only to run a CLI's TypeScript sources.
        if (args.path.startsWith('node:') || kept.has(packageOf(args.path)) || ['ts-node', 'typescript'].includes(packageOf(args.path))) return { path: args.path, external: true };
        return undefined;
      });
    },
  },
];

fs.rmSync(out, { recursive: true, force: true });
await esbuild.build({
  entryPoints: [path.join(dist, 'cli/direct.js')],
  outdir: out,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  plugins,
  logLevel: 'warning',
  // CommonJS modules (oclif and its dependencies) call require() for node's modules.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url); const __distRoot = new URL('../', import.meta.url);" },
});
