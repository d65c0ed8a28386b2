#!/usr/bin/env node
// nydusify's commands (convert, pack, check, copy) arrive with the OCI work; until then this
// entry point says so instead of pretending.
process.stderr.write('Error: nydusify has no commands yet (convert, pack, check and copy are planned); use nydus-image\n');
process.exit(1);
