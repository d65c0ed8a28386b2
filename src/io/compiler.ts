// The optimizing compiler's tuning for a build, which the bins ask for (bin/runtime.js says why
// and what it costs). A program using this package as a library has no such hook: its V8 flags
// stay its own.
const HOOK = Symbol.for('nydus.tuneCompiler');

/** Runs the bin's tuning once, when a build starts (after the command line has loaded). */
export function tuneCompiler(): void {
  const g = globalThis as Record<symbol, unknown>;
  const tune = g[HOOK];
  if (typeof tune !== 'function') return;
  delete g[HOOK];
  (tune as () => void)();
}
