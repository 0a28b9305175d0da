#!/usr/bin/env node
// The velora command: runs dist/velora.mjs, the one-file build of the CLI (npm install / npm ci
// builds dist/ via `prepare`: tsc, then scripts/bundle.mjs). For `build` and `status` it first
// starts stat'ing the workspace's targets on a worker thread, while the CLI loads.
import { startEarlyPrefetch } from '../dist/store/stat-prefetch.js'

startEarlyPrefetch(process.argv.slice(2))
const { main } = await import('../dist/velora.mjs')

main().then((code) => {
  process.exitCode = code
})
