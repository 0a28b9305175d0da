// Where velora's own files are, whether it runs as dist/velora.cjs (the bundle) or as the
// per-module build in dist/ (library users, tests).
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package's root folder (holds package.json): dist/ is directly under it, for the bundle and the modules alike. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

