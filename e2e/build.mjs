// Bundles the SDK test pages with esbuild into dist/: sdk.js + sdk.html
// (supertokens-website 4.2.0) and sdk20.js + sdk20.html (20.x).
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export async function bundle() {
  const out = join(here, 'dist');
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: [join(here, 'pages', 'sdk-entry.js')],
    bundle: true,
    format: 'iife',
    target: 'chrome100',
    outfile: join(out, 'sdk.js'),
    // The `process` global webpack 4 used to provide (see the shim).
    inject: [join(here, 'pages', 'process-shim.js')],
    logLevel: 'warning',
  });
  // The current SDK (20.x, the npm alias `supertokens-website-20`): it reads
  // `process.env` too (processState), so the same shim.
  await build({
    entryPoints: [join(here, 'pages', 'sdk20-entry.js')],
    bundle: true,
    format: 'iife',
    target: 'chrome100',
    outfile: join(out, 'sdk20.js'),
    inject: [join(here, 'pages', 'process-shim.js')],
    logLevel: 'warning',
  });
  await copyFile(join(here, 'pages', 'sdk.html'), join(out, 'sdk.html'));
  await copyFile(join(here, 'pages', 'sdk20.html'), join(out, 'sdk20.html'));
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await bundle();
  console.log(`bundled the SDK test page into ${out}`);
}
