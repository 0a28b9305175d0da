#!/usr/bin/env node
// The velora command: runs dist/velora.mjs, the one-file build of the CLI (npm install / npm ci
// builds dist/ via `prepare`: tsc, then scripts/bundle.mjs).
import { main } from '../dist/velora.mjs'

main().then((code) => {
  process.exitCode = code
})
