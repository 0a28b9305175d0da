#!/usr/bin/env node
// The velora command: runs dist/velora.cjs, the one-file build of the CLI (npm install / npm ci
// builds dist/ via `prepare`: tsc, then scripts/bundle.mjs), compiled with a V8 code cache. For
// `build` and `status` it first starts stat'ing the workspace's targets on a worker thread, while
// the CLI loads. CommonJS (bin/package.json), like all it loads: Node's ESM loader costs a few ms.
'use strict'
const path = require('node:path')
const { startEarlyPrefetch, requireCached } = require('../dist/boot.cjs')

startEarlyPrefetch(process.argv.slice(2))
// a code cache per command: `build` and `status` run other functions than `--help`
const command = /^[a-z]+$/.test(process.argv[2] ?? '') ? process.argv[2] : ''
const { main } = requireCached(path.join(__dirname, '..', 'dist', 'velora.cjs'), command)

main().then((code) => {
  process.exitCode = code
})
