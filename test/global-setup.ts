// Builds dist/ once (tsc, then the one-file bundle bin/velora.js runs) so end-to-end tests run
// the real CLI on current code.
import { execFileSync } from 'node:child_process'
import path from 'node:path'

export default function setup() {
  if (process.env.VELORA_SKIP_BUILD) return
  const root = path.resolve(import.meta.dirname, '..')
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', root], { stdio: 'inherit' })
  execFileSync(process.execPath, [path.join(root, 'scripts/bundle.mjs')], { stdio: 'inherit' })
}
