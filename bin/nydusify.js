#!/usr/bin/env node
// nydusify's commands live under the `nydusify` topic of the one oclif CLI (src/commands/nydusify/);
// this launcher prepends the topic, so `nydusify convert …` runs `nydusify:convert`.
import module from 'node:module';
import v8 from 'node:v8';

// Node >= 22.1 keeps the compiled code of the modules we load (oclif's ~120, ours ~60) on disk
// between runs; Node 20 has no such cache, and the call is skipped there.
module.enableCompileCache?.();

// As bin/nydus-image.js: a small young generation keeps the streamed build's peak RSS down, and a
// smaller inlining budget keeps the optimizing compiler's threads off the cores the build needs
// (convert and pack build in this process).
v8.setFlagsFromString('--max-semi-space-size=4');
v8.setFlagsFromString('--max-inlined-bytecode-size=100');
v8.setFlagsFromString('--max-inlined-bytecode-size-cumulative=150');
// oclif checks the running Node against its own engines range with semver at import (~20 ms of
// CPU to load semver): our package.json already states the Node we need, so skip it.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';

// `--version`/`-v` (urfave/cli's flags upstream) print upstream nydusify's layout.
const first = process.argv[2];
if (first === '--version' || first === '-v') {
  const { nydusifyVersionText } = await import('../dist/version.js');
  process.stdout.write(nydusifyVersionText());
} else {
  const { launch } = await import('../dist/cli/launch.js');
  await launch(import.meta.url, ['nydusify', ...process.argv.slice(2)]);
}
