// What bin/velora.js needs before the CLI loads, bundled on its own as dist/boot.cjs (scripts/
// bundle.mjs): the early stat worker and the code cache. CommonJS, so that a command starts
// without Node's ESM loader.
export { startEarlyPrefetch } from './store/stat-prefetch.js'
export { requireCached } from './compile-cache.js'
