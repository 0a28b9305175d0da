// Node modules loaded when first used, not when velora starts: child_process, worker_threads,
// fs/promises and stream/promises cost ~1-3 ms each to load, and a no-op build or `status`
// on a small workspace uses none of them (a bundle turns every import into a require at start).
import type * as ChildProcess from 'node:child_process'
import type * as FsPromises from 'node:fs/promises'
import { createRequire } from 'node:module'
import type * as StreamPromises from 'node:stream/promises'
import type * as WorkerThreads from 'node:worker_threads'

const load = createRequire(import.meta.url)
// require() keeps a loaded builtin: later calls are a lookup
const lazy = <T>(name: string) => () => load(name) as T

export const childProcess = lazy<typeof ChildProcess>('node:child_process')
export const workerThreads = lazy<typeof WorkerThreads>('node:worker_threads')
export const fsPromises = lazy<typeof FsPromises>('node:fs/promises')
export const streamPromises = lazy<typeof StreamPromises>('node:stream/promises')
