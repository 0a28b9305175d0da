// Where velora's own files are, whether it runs as dist/velora.cjs (the bundle) or as the
// per-module build in dist/ (library users, tests).
import path from 'node:path'
import { fileURLToPath } from 'node:url'

declare const __VELORA_BUNDLE__: boolean | undefined
const bundled = typeof __VELORA_BUNDLE__ !== 'undefined' && __VELORA_BUNDLE__
const here = path.dirname(fileURLToPath(import.meta.url))

/** The package's root folder (holds package.json). */
export const PACKAGE_ROOT = bundled ? path.dirname(here) : path.resolve(here, '..')

