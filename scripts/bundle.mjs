#!/usr/bin/env node
// Bundles dist/bundle.js (tsc's output) and its dependencies into dist/velora.mjs, the file
// bin/velora.js runs. jiti stays outside: it loads its TypeScript transform lazily, from its
// own files. Run by `npm run build` (and so by `npm ci` through `prepare`) and the tests' setup.
import { build } from 'esbuild'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
await build({
  entryPoints: [path.join(root, 'dist/bundle.js')],
  outfile: path.join(root, 'dist/velora.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['jiti'],
  define: { __VELORA_BUNDLE__: 'true' },
  // CommonJS dependencies (commander, fast-glob, cli-progress) call require() for node builtins
  banner: { js: "import { createRequire as __veloraRequire } from 'node:module'; const require = __veloraRequire(import.meta.url);" },
  legalComments: 'none',
  // whitespace and syntax only: names stay, so a stack trace still reads
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
})
