// Guarantee 7, big and noisy steps: a step writing 1 GiB to stdout (succeeding, and failing, so
// the summary shows its log's tail), and a step writing a 1 GiB output file, leave velora's peak
// RSS bounded; the output is hashed in a stream (its recorded sha256 is right), also when a
// later status re-hashes it after its mtime changed.
import { statSync, utimesSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { makeFaultWorkspace, readMaxRssKb, readRecords, removeTree, sha256File, startVelora, statusOf } from './helpers.js'

const roots: string[] = []
afterAll(() => roots.forEach(removeTree))

const GiB = 2 ** 30
/** velora's own memory is ~100 MB at rest; any buffering of 1 GiB would blow far past this. */
const MAX_RSS_MB = 256

describe('guarantee 7: big and noisy steps', () => {
  it('1 GiB of stdout (twice, one failing) and a 1 GiB output file: peak RSS stays bounded, the output is hashed in a stream', async () => {
    const w = makeFaultWorkspace({
      instances: [
        { instance_id: 'noisy', mode: 'noisy' },
        { instance_id: 'noisy-fail', mode: 'noisy', payload: 'fail' },
        { instance_id: 'bigout', mode: 'bigout' },
      ],
      models: { opus: {} },
      single: true,
      jobs: 3,
    })
    roots.push(w.root)
    const { ws, root } = w
    const rss = path.join(root, 'rss-build')
    const r = await startVelora(ws, ['build', '--no-progress'], {}, { timeWrapper: rss }).done
    expect(r.code, r.stdout + r.stderr).toBe(1)
    const peakMb = readMaxRssKb(rss) / 1024
    console.log(`[guarantee 7] velora build peak RSS ${peakMb.toFixed(0)} MB with 2 GiB of stdout and a 1 GiB output`)
    expect(peakMb).toBeLessThan(MAX_RSS_MB)

    const t = (id: string) => path.join(ws, 'targets/opus/lite', id)
    expect(statSync(path.join(t('noisy'), 'infer.log')).size).toBeGreaterThan(GiB)
    expect(statSync(path.join(t('noisy-fail'), 'infer.log')).size).toBeGreaterThan(GiB)
    // the failure's summary shows the end of its 1 GiB log
    expect(r.stdout).toMatch(/✗ opus\/lite\/noisy-fail infer failed \(exit 6\)[^\n]*\n(.*\n)*.*│ noisy step failing on purpose/)

    const out = path.join(t('bigout'), 'output.jsonl')
    expect(statSync(out).size).toBe(GiB)
    const sha = sha256File(out)
    const rec = readRecords(ws).records.get('opus/lite/bigout').steps.infer
    expect(rec.state).toBe('built')
    expect(rec.outputs['output.jsonl']).toMatchObject({ sha256: sha, size: GiB })

    // a changed mtime forces a re-hash of the 1 GiB output when planning: still bounded, still built
    utimesSync(out, new Date(), new Date(Date.now() + 5000))
    const rss2 = path.join(root, 'rss-status')
    const st = await startVelora(ws, ['status', '--json'], {}, { timeWrapper: rss2 }).done
    expect(st.code, st.stderr).toBe(0)
    expect(JSON.parse(st.stdout).targets.find((x: any) => x.instance === 'bigout').state).toBe('built')
    expect(readMaxRssKb(rss2) / 1024).toBeLessThan(MAX_RSS_MB)
    expect(statusOf(ws).targets.find((x: any) => x.instance === 'noisy').state).toBe('built')
  }, 180_000)
})
