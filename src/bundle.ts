// The entry of dist/velora.cjs, the one-file build of the CLI and the library (scripts/bundle.mjs).
// One file loads in about half the time of the ~60 modules it is made of, and a config's
// `import { defineConfig } from 'velora'` is this same file, already loaded (jiti's virtual module).
export * from './index.js'
export { main } from './cli/main.js'
