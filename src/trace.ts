// VELORA_TRACE=1: the time (ms since the process started) at which each phase of a command
// ended, printed to stderr at exit. Like `ninja -d stats`: for finding where a no-op goes.
const on = !!process.env.VELORA_TRACE
const marks: [string, number][] = []

export function mark(label: string): void {
  if (!on) return
  if (marks.length === 0) process.once('exit', print)
  marks.push([label, performance.now()])
}

function print() {
  let prev = 0
  const lines = marks.map(([l, t]) => {
    const line = `${t.toFixed(1).padStart(8)} ms  +${(t - prev).toFixed(1).padStart(7)}  ${l}`
    prev = t
    return line
  })
  const mem = process.memoryUsage()
  // velora's own CPU (all its threads, not its steps): the figure to compare when wall time is noisy
  const ru = process.resourceUsage()
  const cpu = `cpu ${(ru.userCPUTime / 1e6).toFixed(2)} s user, ${(ru.systemCPUTime / 1e6).toFixed(2)} s system`
  process.stderr.write(`velora trace\n${lines.join('\n')}\n  heap ${(mem.heapUsed / 1e6).toFixed(0)} MB, rss ${(mem.rss / 1e6).toFixed(0)} MB, ${cpu}\n`)
}
