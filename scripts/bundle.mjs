#!/usr/bin/env node
// Bundles dist/bundle.js (tsc's output) and its dependencies into dist/velora.cjs, the file
// bin/velora.js runs through the V8 code cache (src/compile-cache.ts, hence CommonJS), and
// dist/boot.js into dist/boot.cjs, what bin/velora.js loads before it. jiti stays outside: it
// loads its TypeScript transform lazily, from its own files.
// Run by `npm run build` (and so by `npm ci` through `prepare`) and the tests' setup.
import { build } from 'esbuild'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
await build({
  entryPoints: [path.join(root, 'dist/bundle.js')],
  outfile: path.join(root, 'dist/velora.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['jiti'],
  define: { __VELORA_BUNDLE__: 'true', 'import.meta.url': '__velora_url' },
  banner: { js: "const __velora_url = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  // whitespace and syntax only: names stay, so a stack trace still reads
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
})

// what bin/velora.js loads first: the early stat worker and the code cache, ~15 KB
await build({
  entryPoints: [path.join(root, 'dist/boot.js')],
  outfile: path.join(root, 'dist/boot.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  define: { 'import.meta.url': '__velora_url' },
  banner: { js: "const __velora_url = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  logLevel: 'warning',
})
