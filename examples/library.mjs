// Using nydus-image as a library: build an image, then read it back.
// Run after `npm run build`: node examples/library.mjs [SOURCE_DIR] [OUT_DIR]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, openImage, BlobReader, walkImage } from '../dist/index.js';

const source = process.argv[2] ?? new URL('./rootfs', import.meta.url).pathname;
const out = process.argv[3] ?? fs.mkdtempSync('/tmp/nydus-lib-');
const result = await create({ source, bootstrap: path.join(out, 'bootstrap'), blob: path.join(out, 'blob'), compressor: 'zstd' });
console.log('blob id:', result.blobs[0], 'blob size:', result.blobSize);

const image = openImage(result.bootstrap);
const reader = new BlobReader(image, { blob: path.join(out, 'blob') });
for (const [p, node] of walkImage(image.root)) {
  const bytes = node.chunks ? Buffer.concat([...reader.readFile(node, true)]).length : '';
  console.log(node.mode.toString(8).padStart(6, '0'), String(node.size).padStart(8), p, bytes === '' ? '' : `(read ${bytes} bytes back)`);
}
reader.close();
