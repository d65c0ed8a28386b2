#!/usr/bin/env node
// nydusify's commands live under the `nydusify` topic of the one oclif CLI (src/commands/nydusify/);
// this launcher prepends the topic, so `nydusify convert …` runs `nydusify:convert`.
import './runtime.js';

// `--version`/`-v` (urfave/cli's flags upstream) print upstream nydusify's layout.
const first = process.argv[2];
if (first === '--version' || first === '-v') {
  const { nydusifyVersionText } = await import('../dist/version.js');
  process.stdout.write(nydusifyVersionText());
} else {
  const { launch } = await import('../dist/cli/launch.js');
  await launch(import.meta.url, ['nydusify', ...process.argv.slice(2)]);
}
