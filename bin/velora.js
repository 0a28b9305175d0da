#!/usr/bin/env node
// The velora command: runs the compiled CLI (npm install / npm ci builds dist/ via `prepare`).
import { main } from '../dist/cli/main.js'

main().then((code) => {
  process.exitCode = code
})
