#!/usr/bin/env node
import './runtime.js';

// `--version`/`-V` print upstream's layout, which the container tools' converters parse
// (oclif's own version line carries no "Version:" field).
const first = process.argv[2];
if (first === '--version' || first === '-V') {
  const { nydusImageVersionText } = await import('../dist/version.js');
  process.stdout.write(nydusImageVersionText());
} else {
  const { launch } = await import('../dist/cli/launch.js');
  await launch(import.meta.url, process.argv.slice(2));
}
