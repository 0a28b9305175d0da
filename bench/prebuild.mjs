#!/usr/bin/env node
// Brings a large workload to "everything built" without timing it, for `run.mjs --skip-full`:
// velora through `velora import` (records and outputs as a build writes them), others by building.
// usage: node bench/prebuild.mjs MxN [--tools velora,ninja] [--bin FILE] [--work DIR]
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { generate } from './gen.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt)
const [m, n] = args[0].split('x').map(Number)
const tools = opt('--tools', 'velora,ninja').split(',')
const bin = path.resolve(opt('--bin', path.join(ROOT, 'bin/velora.js')))
const work = path.resolve(opt('--work', path.join(ROOT, 'bench/work')))
const sh = (cmd, argv, cwd) => {
  const t0 = Date.now()
  const r = spawnSync(cmd, argv, { cwd, stdio: ['ignore', 'ignore', 'inherit'] })
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed in ${cwd}`)
  return Date.now() - t0
}

for (const tool of tools) {
  const dir = path.join(work, `${m}x${n}`, tool)
  const { models, ids } = generate(tool, dir, m, n)
  if (tool === 'velora') {
    // one batch file per model and step, as an old batch runner would have left them
    mkdirSync(path.join(dir, 'batch'), { recursive: true })
    for (const model of models)
      for (const step of ['infer', 'eval']) {
        const lines = ids.map((id) => {
          const inst = readFileSync(path.join(dir, 'data', `${id}.json`), 'utf8').trim()
          return JSON.stringify(step === 'infer' ? { instance_id: id, model, history: [inst, inst, inst, inst] } : { instance_id: id, resolved: id.length % 2 === 0 })
        })
        const file = path.join(dir, 'batch', `${model}.${step}.jsonl`)
        writeFileSync(file, lines.join('\n') + '\n')
        const ms = sh(process.execPath, [bin, 'import', model, 'bench', '--step', step, '--from', file], dir)
        console.log(`velora import ${model} ${step}: ${ms} ms`)
      }
  } else {
    const argv = tool === 'snakemake' ? ['-j', '2', '--quiet'] : ['-j', '2']
    console.log(`${tool} build: ${sh(tool, argv, dir)} ms`)
  }
}
