// Generates one benchmark workload (M models × N instances, steps infer → eval) for each
// tool: velora, ninja, make, snakemake. Same data, same shell commands, same output files.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'

export const TOOLS = ['velora', 'ninja', 'make', 'snakemake']

export const models = (m) => Array.from({ length: m }, (_, i) => `m${i}`)
export const instances = (n) => Array.from({ length: n }, (_, i) => `repo${i % 12}__proj-${i + 1}`)

/** An instance record of a bit under 1 KB, like a short SWE-bench task; `rev` changes its content. */
export function instanceJson(id, rev = 0) {
  const text = `Fix the bug in module ${id}. `.repeat(24)
  return JSON.stringify({ instance_id: id, repo: id.split('__')[0], rev, problem_statement: text }) + '\n'
}

// The two steps, as shell snippets over $IN (instance file), $OUT (output), $M (model),
// $PREV (infer's output, for eval). infer writes ~4 KB; eval reads it and writes a line.
const INFER = 'for i in 1 2 3 4; do cat "$IN"; done > "$OUT"; echo "$M" >> "$OUT"'
const EVAL = '{ head -c 120 "$IN"; echo; wc -c < "$PREV"; } > "$OUT"'

function writeData(dir, ids) {
  mkdirSync(path.join(dir, 'data'), { recursive: true })
  for (const id of ids) writeFileSync(path.join(dir, 'data', `${id}.json`), instanceJson(id))
}

function velora(dir, ms) {
  const sh = (body, vars) => JSON.stringify(['sh', '-c', `${vars}; ${body}`])
  const cfg = `import { defineConfig } from 'velora'

export default defineConfig({
  jobs: 2,
  models: {
${ms.map((m) => `    ${m}: { params: { model: '${m}' } },`).join('\n')}
  },
  datasets: { bench: { path: 'data/*.json', idField: 'instance_id' } },
  steps: {
    infer: {
      command: ${sh(INFER, 'IN="$VELORA_INSTANCE" OUT="$VELORA_OUT_DIR/output.jsonl" M="$VELORA_MODEL"')},
      outputs: ['output.jsonl'],
    },
    eval: {
      needs: ['infer'],
      command: ${sh(EVAL, 'IN="$VELORA_INSTANCE" PREV="$VELORA_TARGET_DIR/output.jsonl" OUT="$VELORA_OUT_DIR/eval_output.jsonl"')},
      outputs: ['eval_output.jsonl'],
    },
  },
})
`
  writeFileSync(path.join(dir, 'sessions.config.ts'), cfg)
}

function ninja(dir, ms, ids) {
  const esc = (s) => s.replace(/\$/g, '$$$$') // ninja spells a shell $ as $$
  const L = [
    'rule infer',
    `  command = IN=$in OUT=$out M=$model; ${esc(INFER)}`,
    'rule eval',
    `  command = IN=$inst PREV=$prev OUT=$out; ${esc(EVAL)}`,
    '',
  ]
  for (const m of ms)
    for (const id of ids) {
      const t = `targets/${m}/bench/${id}`
      L.push(`build ${t}/output.jsonl: infer data/${id}.json`, `  model = ${m}`)
      L.push(`build ${t}/eval_output.jsonl: eval ${t}/output.jsonl data/${id}.json`, `  inst = data/${id}.json`, `  prev = ${t}/output.jsonl`)
    }
  writeFileSync(path.join(dir, 'build.ninja'), L.join('\n') + '\n')
}

function make(dir, ms, ids) {
  const mk = (s) => s.replace(/\$/g, '$$$$')
  const L = ['.SUFFIXES:', 'MAKEFLAGS += -r', `INSTANCES := ${ids.join(' ')}`, `MODELS := ${ms.join(' ')}`]
  // both files listed in `all` so make never treats output.jsonl as intermediate (and deletes it)
  L.push('all: $(foreach m,$(MODELS),$(foreach i,$(INSTANCES),targets/$(m)/bench/$(i)/output.jsonl targets/$(m)/bench/$(i)/eval_output.jsonl))', '.PHONY: all')
  for (const m of ms) {
    L.push(`targets/${m}/bench/%/output.jsonl: data/%.json`, `\t@mkdir -p $(@D) && IN=$< OUT=$@ M=${m}; ${mk(INFER)}`)
    L.push(`targets/${m}/bench/%/eval_output.jsonl: targets/${m}/bench/%/output.jsonl data/%.json`, `\t@IN=data/$*.json PREV=$< OUT=$@; ${mk(EVAL)}`)
  }
  writeFileSync(path.join(dir, 'Makefile'), L.join('\n') + '\n')
}

function snakemake(dir, ms, ids) {
  const sm = (s) => s.replace(/\{/g, '{{').replace(/\}/g, '}}')
  const text = `MODELS = ${JSON.stringify(ms)}
INSTANCES = [l.strip() for l in open("instances.txt")]

rule all:
    input: expand("targets/{m}/bench/{i}/eval_output.jsonl", m=MODELS, i=INSTANCES)

rule infer:
    input: "data/{i}.json"
    output: "targets/{m}/bench/{i}/output.jsonl"
    shell: 'IN={input} OUT={output} M={wildcards.m}; ${sm(INFER)}'

rule eval:
    input: prev="targets/{m}/bench/{i}/output.jsonl", inst="data/{i}.json"
    output: "targets/{m}/bench/{i}/eval_output.jsonl"
    shell: 'IN={input.inst} PREV={input.prev} OUT={output}; ${sm(EVAL)}'
`
  writeFileSync(path.join(dir, 'Snakefile'), text)
  writeFileSync(path.join(dir, 'instances.txt'), ids.join('\n') + '\n')
}

const WRITERS = { velora, ninja, make, snakemake }

// Files are not removed while the bench measures, but moved to a trash folder removed at the
// end: on an ext4 without a journal (this VM's) the inode allocator skips every inode freed in
// the last 60 to 300 s, reading its inode-table block to know, so a build just after a large
// removal pays for each file it makes, the more files the more (velora makes ~4 per step, ninja ~1).
let trash
let trashed = 0
export function setTrash(dir) {
  trash = dir
}
/** Move `p` out of the way (removed by emptyTrash); a plain removal without a trash folder. */
export function discard(p) {
  if (!existsSync(p)) return
  if (!trash) return rmSync(p, { recursive: true, force: true })
  mkdirSync(trash, { recursive: true })
  renameSync(p, path.join(trash, `${process.pid}-${trashed++}`))
}
export function emptyTrash() {
  if (trash) rmSync(trash, { recursive: true, force: true })
}

/** Write a fresh workspace for `tool` under `dir` (the old one discarded first). */
export function generate(tool, dir, m, n) {
  discard(dir)
  mkdirSync(dir, { recursive: true })
  const ids = instances(n)
  writeData(dir, ids)
  WRITERS[tool](dir, models(m), ids)
  return { models: models(m), ids }
}
