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
// both outputs: CommonJS for Node 20, import.meta.url given from the file's own path
const cjs = (entry, out) => ({
  entryPoints: [path.join(root, entry)],
  outfile: path.join(root, out),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  define: { 'import.meta.url': '__velora_url' },
  banner: { js: "const __velora_url = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  logLevel: 'warning',
})

await build({
  ...cjs('dist/bundle.js', 'dist/velora.cjs'),
  external: ['jiti'],
  // whitespace and syntax only: names stay, so a stack trace still reads
  minifyWhitespace: true,
  minifySyntax: true,
})

// what bin/velora.js loads first: the early stat worker and the code cache, ~15 KB
await build(cjs('dist/boot.js', 'dist/boot.cjs'))
