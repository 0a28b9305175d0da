#!/usr/bin/env node
// Simulated evaluation step for the velora demo: reads the infer step's output.jsonl and writes
// eval_output.jsonl with a "resolved" verdict that is deterministic from the patch (opus best, qwen worst).
import { readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";

const env = process.env;
const speed = env.DEMO_AGENT_SPEED && Number(env.DEMO_AGENT_SPEED) >= 0 ? Number(env.DEMO_AGENT_SPEED) : 1;
const fail = (msg) => { console.error(`[eval] error: ${msg}`); process.exit(1); };

if (env.DEMO_AGENT_CALLS_LOG) {
  appendFileSync(env.DEMO_AGENT_CALLS_LOG, `${env.VELORA_MODEL} ${env.VELORA_INSTANCE_ID} ${env.VELORA_STEP} ${env.VELORA_ATTEMPT}\n`);
}
if (!env.VELORA_TARGET_DIR || !env.VELORA_OUT_DIR) fail("VELORA_TARGET_DIR and VELORA_OUT_DIR must be set (run me through velora)");

const src = join(env.VELORA_TARGET_DIR, "output.jsonl");
const unresolved = (why) => {
  // a model failure is a result: scored as not resolved (SWE-bench does the same with an empty patch)
  writeFileSync(join(env.VELORA_OUT_DIR, "eval_output.jsonl"), JSON.stringify({ instance_id: env.VELORA_INSTANCE_ID, resolved: false, tests_passed: 0, tests_failed: 0, error: why }) + "\n");
  console.log(`[eval] ${env.VELORA_INSTANCE_ID}: not resolved (${why})`);
  process.exit(0);
};
let text;
try { text = readFileSync(src, "utf8"); } catch { unresolved("no trajectory: the agent wrote no output.jsonl"); }
let out;
try { out = JSON.parse(text.split("\n").find((l) => l.trim())); } catch { fail(`cannot parse the first line of ${src} as JSON`); }
const patch = out?.test_result?.git_patch;
if (typeof patch !== "string") fail(`${src} has no test_result.git_patch`);
if (patch === "") unresolved(out.error ? `empty patch: ${out.error}` : "empty patch");

const id = out.instance_id ?? env.VELORA_INSTANCE_ID;
console.log(`[eval] applying patch for ${id} (${patch.split("\n").length} lines) and running tests...`);
const h = createHash("sha256").update(patch).digest();
await new Promise((r) => setTimeout(r, (50 + (h[0] / 255) * 150) * speed));

const name = `${env.VELORA_MODEL ?? ""} ${out.metadata?.model ?? ""}`.toLowerCase();
const family = ["opus", "gpt", "kimi", "qwen"].find((f) => name.includes(f));
const rate = { opus: 0.56, gpt: 0.48, kimi: 0.44, qwen: 0.36 }[family] ?? 0.5;
// Hard instances are hard for every model: the score mixes a per-instance difficulty (85%) with
// patch-specific luck (15%); for rates within 0.09..0.91, P(score < 0.075 + 0.85 * rate) = rate.
const difficulty = createHash("sha256").update(String(id)).digest().readUInt32BE(0) / 2 ** 32;
const score = 0.85 * difficulty + 0.15 * (h.readUInt32BE(4) / 2 ** 32);
const resolved = score < 0.075 + 0.85 * rate;
const total = 8 + (h[8] % 60);
const failed = resolved ? 0 : 1 + (h[9] % Math.min(total, 6));
const result = { instance_id: id, resolved, tests_passed: total - failed, tests_failed: failed };
writeFileSync(join(env.VELORA_OUT_DIR, "eval_output.jsonl"), JSON.stringify(result) + "\n");
console.log(`[eval] ${id}: ${resolved ? "RESOLVED" : "not resolved"} (${result.tests_passed} passed, ${result.tests_failed} failed)`);
