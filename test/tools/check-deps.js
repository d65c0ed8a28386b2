#!/usr/bin/env node
// `npm run lint:deps`: every package package.json lists in dependencies or devDependencies must be
// used: imported (import/export … from, import(), require(), node's --import/--require) by a file
// under src/, bin/, plugins/, test/, bench/, examples/, scripts/ or a config file at the root; run as a
// binary by a package.json script or a CI script under .ci/; an @types/X package counts when X
// does (@types/node when anything imports node:…); node-gyp counts when binding.gyp exists (npm
// runs it for the install). Exit 0 when every package is used; exit 1 naming the unused ones.
//
//   node test/tools/check-deps.js [--root DIR]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIRS = ['src', 'bin', 'plugins', 'test', 'bench', 'examples', 'scripts'];
const CODE = /\.(?:[cm]?[jt]s|tsx?)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build', '.git']);
const SPECIFIERS = [
  /\b(?:from|import)\s*['"]([^'"\n]+)['"]/g,
  /\bimport\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g,
  /\brequire(?:\.resolve)?\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g,
  /\bimport\.meta\.resolve\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g,
  /['"]--(?:import|require|loader)['"]\s*,\s*['"]([^'"\n]+)['"]/g,
  /--(?:import|require|loader)[= ]([@\w][\w./@-]*)/g,
];

function parseArgs(argv) {
  let root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--root' && argv[i + 1] !== undefined) root = path.resolve(argv[++i]);
    else {
      process.stderr.write(`check-deps: unknown argument ${JSON.stringify(argv[i])}; usage: check-deps.js [--root DIR]\n`);
      process.exit(2);
    }
  }
  return { root };
}

/** The package a bare specifier names (`@scope/name` or `name`), or undefined for node:, relative and absolute ones. */
export function packageOf(spec) {
  if (spec.startsWith('node:') || spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('#')) return undefined;
  const parts = spec.split('/');
  if (spec.startsWith('@')) return parts.length >= 2 ? `${parts[0]}/${parts[1]}` : undefined;
  return parts[0] || undefined;
}

/** Code files under dir, iteratively (no recursion on the tree's depth). */
function codeFiles(dir) {
  const out = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop();
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) stack.push(path.join(d, e.name));
      } else if (e.isFile() && CODE.test(e.name)) out.push(path.join(d, e.name));
    }
  }
  return out;
}

/** Packages the code imports, and whether anything imports node:… */
function imported(root) {
  const pkgs = new Set();
  let nodeBuiltins = false;
  const rootFiles = fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isFile() && CODE.test(e.name)).map((e) => path.join(root, e.name));
  for (const file of [...rootFiles, ...DIRS.flatMap((d) => codeFiles(path.join(root, d)))]) {
    const text = fs.readFileSync(file, 'utf8');
    for (const re of SPECIFIERS) {
      for (const m of text.matchAll(re)) {
        if (m[1].startsWith('node:')) nodeBuiltins = true;
        const p = packageOf(m[1]);
        if (p) pkgs.add(p);
      }
    }
  }
  return { pkgs, nodeBuiltins };
}

/** The names of the binaries a package installs (its own name when it is not installed). */
function binsOf(root, pkg) {
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', pkg, 'package.json'), 'utf8'));
    if (typeof meta.bin === 'string') return [pkg.split('/').pop()];
    if (meta.bin && typeof meta.bin === 'object') return Object.keys(meta.bin);
    return [];
  } catch {
    return [pkg.split('/').pop()];
  }
}

/** Every word of the package.json scripts and the CI scripts: where a binary would be run. */
function scriptWords(root, manifest) {
  const texts = Object.values(manifest.scripts ?? {});
  const ci = path.join(root, '.ci');
  if (fs.existsSync(ci)) {
    for (const e of fs.readdirSync(ci, { withFileTypes: true })) if (e.isFile()) texts.push(fs.readFileSync(path.join(ci, e.name), 'utf8'));
  }
  return new Set(texts.flatMap((t) => t.split(/[\s;&|()"'`]+/)).filter((w) => w !== ''));
}

export function unusedDeps(root) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const declared = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {})];
  const { pkgs, nodeBuiltins } = imported(root);
  const words = scriptWords(root, manifest);
  const used = (pkg) => {
    if (pkgs.has(pkg)) return true;
    if (binsOf(root, pkg).some((b) => words.has(b))) return true;
    if (pkg.startsWith('@types/')) {
      const of = pkg.slice('@types/'.length);
      if (of === 'node') return nodeBuiltins;
      // @types/scope__name types @scope/name.
      return pkgs.has(of.includes('__') ? `@${of.replace('__', '/')}` : of);
    }
    if (pkg === 'node-gyp') return fs.existsSync(path.join(root, 'binding.gyp'));
    return false;
  };
  const unused = declared.filter((p) => !used(p)).sort();
  return { declared: declared.length, unused };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { root } = parseArgs(process.argv.slice(2));
  const r = unusedDeps(root);
  if (r.unused.length > 0) {
    process.stderr.write(`check-deps: declared in package.json but never used: ${r.unused.join(', ')}\n`);
    process.exit(1);
  }
  process.stdout.write(`check-deps: all ${r.declared} declared packages are used\n`);
}
