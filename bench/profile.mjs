// Summarises a .cpuprofile (node --cpu-prof): self time by function and by file, and inclusive
// time by function. Usage: node bench/profile.mjs FILE.cpuprofile [how many inclusive rows]
import { readFileSync } from 'node:fs'
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const dt = new Map()
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0))
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const self = new Map(), byFile = new Map(), incl = new Map()
let total = 0
for (const [id, t] of dt) {
  total += t
  const n = byId.get(id)
  const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`
  self.set(k, (self.get(k) ?? 0) + t)
  const f = n.callFrame.url.replace(/.*node_modules\//, 'nm/').replace(/.*\/dist\//, 'dist/') || n.callFrame.functionName
  byFile.set(f, (byFile.get(f) ?? 0) + t)
  // inclusive by function name along the stack (each once)
  const seen = new Set()
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const c = byId.get(cur).callFrame
    const kk = `${c.functionName || '(anon)'} ${c.url.split('/').slice(-2).join('/')}:${c.lineNumber}`
    if (seen.has(kk)) continue
    seen.add(kk)
    incl.set(kk, (incl.get(kk) ?? 0) + t)
  }
}
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(v / 1000).toFixed(1).padStart(8)} ms  ${k}`).join('\n')
console.log(`total ${(total / 1000).toFixed(0)} ms\n-- self by function\n${top(self, 25)}\n-- self by file\n${top(byFile, 15)}\n-- inclusive\n${top(incl, Number(process.argv[3] ?? 40))}`)
