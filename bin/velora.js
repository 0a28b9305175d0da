#!/usr/bin/env node
// The velora command: runs dist/velora.cjs, the one-file build of the CLI (npm install / npm ci
// builds dist/ via `prepare`: tsc, then scripts/bundle.mjs), compiled with a V8 code cache
// (dist/compile-cache.js). For `build` and `status` it first starts stat'ing the workspace's
// targets on a worker thread, while the CLI loads.
import { startEarlyPrefetch } from '../dist/store/stat-prefetch.js'
import { requireCached } from '../dist/compile-cache.js'
import { fileURLToPath } from 'node:url'

startEarlyPrefetch(process.argv.slice(2))
const { main } = requireCached(fileURLToPath(new URL('../dist/velora.cjs', import.meta.url)))

main().then((code) => {
  process.exitCode = code
})
