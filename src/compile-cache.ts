// A V8 code cache for velora's own two big CommonJS files (the CLI bundle and jiti), so that a
// command does not compile ~750 KB of JavaScript again on every start: the cache holds the
// functions V8 compiled during the first run, and later runs take them as they are. Node 22 has
// this built in (module.enableCompileCache); Node 20 does not, so this is the same idea by hand
// with node:vm, for the files velora itself loads. The cache is derived: a file named by the
// source's hash, Node's version and the architecture; V8 checks it again and a rejected or
// unreadable one is only a slower start (and is written anew).
//
// Where: $VELORA_COMPILE_CACHE if it is a folder, else <tmpdir>/velora-compile-cache-<uid>;
// VELORA_COMPILE_CACHE=0 turns it off.
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import Module, { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import vm from 'node:vm'

type NodeModule = InstanceType<typeof Module> & { filename: string; paths: string[]; loaded: boolean; exports: unknown }
type ModuleStatics = { _cache: Record<string, NodeModule>; _nodeModulePaths(dir: string): string[]; wrap(src: string): string }
const M = Module as unknown as ModuleStatics & (new (id: string, parent?: unknown) => NodeModule)

/** The cache folder, or undefined when the cache is off. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.VELORA_COMPILE_CACHE
  if (v === '0' || v === 'off' || v === 'false') return undefined
  if (v && v !== '1' && v !== 'on' && v !== 'true') return path.resolve(v)
  return path.join(os.tmpdir(), `velora-compile-cache-${process.getuid?.() ?? 'user'}`)
}

const toWrite: Array<{ file: string; script: vm.Script }> = []
let exitHook = false

/**
 * require(file) for a CommonJS file, compiled with the code cache when there is one (one per
 * `variant`). The module is registered in require's cache under its own path, so a later
 * require of it (or of a file that requires it) gets this instance.
 */
export function requireCached(file: string, variant = ''): unknown {
  const known = M._cache[file]
  if (known) return known.exports
  const dir = compileCacheDir()
  if (!dir) return createRequire(file)(file)
  const source = readFileSync(file, 'utf8')
  // <name>.<where>.<what>.v8: one file per installed copy and variant (the command: each command
  // runs other functions, and a cache holds those its first run compiled), replaced when the
  // content changes
  const where = createHash('sha1').update(`${process.version}\0${process.arch}\0${file}\0${variant}`).digest('hex').slice(0, 12)
  const what = createHash('sha1').update(source).digest('hex').slice(0, 20)
  const cacheFile = path.join(dir, `${path.basename(file)}.${where}.${what}.v8`)
  let cachedData: Buffer | undefined
  try {
    cachedData = readFileSync(cacheFile)
  } catch {
    // none yet
  }
  const script = new vm.Script(M.wrap(source), {
    filename: file,
    cachedData,
    // the file may import() (jiti imports a config's ESM dependencies natively)
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  })
  const mod = new M(file, undefined)
  mod.filename = file
  mod.paths = M._nodeModulePaths(path.dirname(file))
  M._cache[file] = mod
  try {
    const wrapper = script.runInThisContext() as (...args: unknown[]) => void
    wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file))
  } catch (e) {
    delete M._cache[file]
    throw e
  }
  mod.loaded = true
  if (!cachedData || script.cachedDataRejected) {
    // written when the process ends, so it holds the functions this run compiled lazily too
    toWrite.push({ file: cacheFile, script })
    if (!exitHook) {
      exitHook = true
      process.once('exit', saveCompileCache)
    }
  }
  return mod.exports
}

/** Write the code caches this process made (atomically; a failure only costs the next start). */
export function saveCompileCache(): void {
  for (const { file, script } of toWrite.splice(0)) {
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
      const tmp = `${file}.${process.pid}.tmp`
      writeFileSync(tmp, script.createCachedData())
      renameSync(tmp, file)
      // older caches of the same copy (an earlier build of it) go, and any not written for 30 days
      // (copies of velora removed since)
      const stem = path.basename(file).replace(/[^.]+\.v8$/, '')
      const old = Date.now() - 30 * 86_400_000
      for (const f of readdirSync(path.dirname(file))) {
        if (!f.endsWith('.v8') || f === path.basename(file)) continue
        const p = path.join(path.dirname(file), f)
        if (f.startsWith(stem) || statSync(p).mtimeMs < old) rmSync(p, { force: true })
      }
    } catch {
      // a read-only or full tmpdir: no cache, same behaviour
    }
  }
}
