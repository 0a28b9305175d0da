#!/usr/bin/env node
// One-off generator for data/lite.jsonl: 75 demo instances built from real SWE-bench Lite ids
// (every 4th line of the id list); base_commit, problem_statement and version are made up but deterministic.
import { readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";

const src = process.argv[2] ?? "/work/shared/data/swe-bench-lite-ids.txt";
const dest = process.argv[3] ?? new URL("../data/lite.jsonl", import.meta.url);
const ids = readFileSync(src, "utf8").split("\n").map((l) => l.trim()).filter(Boolean);
const picked = ids.filter((_, i) => i % 4 === 0);

const versions = {
  "astropy/astropy": ["4.3", "5.0", "5.1"], "django/django": ["3.0", "3.2", "4.0", "4.1", "4.2"],
  "matplotlib/matplotlib": ["3.5", "3.6", "3.7"], "mwaskom/seaborn": ["0.12"], "pallets/flask": ["2.3"],
  "psf/requests": ["2.0", "2.3"], "pydata/xarray": ["0.12", "2022.03"], "pylint-dev/pylint": ["2.13", "2.15"],
  "pytest-dev/pytest": ["5.4", "7.0", "8.0"], "scikit-learn/scikit-learn": ["0.20", "0.22", "1.3"],
  "sphinx-doc/sphinx": ["3.5", "4.4", "5.0"], "sympy/sympy": ["1.1", "1.4", "1.9", "1.12"],
};
const problems = [
  (r) => `Calling a public helper in ${r} raises an unexpected TypeError when given an empty input.`,
  (r) => `${r}: the repr of a core object drops a field after a round trip through copy().`,
  (r) => `A regression in ${r} makes an option passed by keyword silently ignored.`,
  (r) => `${r} produces wrong results when mixing units/dtypes in a single call.`,
  (r) => `Deprecation warning in ${r} is emitted twice and points at the wrong stack frame.`,
];

const lines = picked.map((id) => {
  const h = createHash("sha1").update(id).digest();
  const [owner, rest] = id.split("__");
  const repo = `${owner}/${rest.replace(/-\d+$/, "")}`;
  const vs = versions[repo] ?? ["1.0"];
  return JSON.stringify({
    instance_id: id,
    repo,
    base_commit: h.toString("hex"),
    problem_statement: problems[h[1] % problems.length](repo),
    version: vs[h[2] % vs.length],
  });
});
writeFileSync(dest, lines.join("\n") + "\n");
console.log(`wrote ${lines.length} instances`);
