// What both bins set up before anything else loads (each imports this module first).
import module from 'node:module';
import v8 from 'node:v8';

// Node >= 22.1 keeps the compiled code of the modules we load (oclif's ~120, ours ~60) on disk
// between runs; Node 20 has no such cache, and the call is skipped there.
module.enableCompileCache?.();

// A smaller inlining budget for the optimizing compiler, set when a build starts (the hook below,
// which src/io/compiler.ts runs; a program that uses the library keeps its own flags): a build is
// over in seconds, and the helper threads compiling the main thread's hot functions (with
// everything they inline) took ~0.5 CPU-s of a 53k-file build, competing with the chunk workers
// for the cores. Smaller graphs compile faster, and the build ran no slower for it
// (bench/README.md). nydusify's convert and pack build in its own process too.
// It has a price: with a flag off its default, V8 turns down the compiled code Node ships for its
// own modules, so each one loaded after (a bare worker thread loads 86) compiles from source;
// measured, that costs less than the compiling the budget saves (bench/README.md). Set at the
// build's start rather than here, the modules the command line loads first keep that code: ~10 ms
// less of every build's start.
// The young generation's size cannot be set here: V8 reads --max-semi-space-size only when a heap
// is made, and this thread's was made before any JavaScript ran (the workers size theirs in
// resourceLimits).
globalThis[Symbol.for('nydus.tuneCompiler')] = () => {
  v8.setFlagsFromString('--max-inlined-bytecode-size=100');
  v8.setFlagsFromString('--max-inlined-bytecode-size-cumulative=150');
};
// oclif checks the running Node against its own engines range with semver at import (~20 ms of
// CPU to load semver): our package.json already states the Node we need, so skip it.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
