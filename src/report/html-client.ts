// The inline CSS and browser script of report.html: draws the model × instance matrix, the target
// grid and the timeline from the embedded JSON, with tooltips and log links. Plain ES2017, no
// network, no libraries.

export const CLIENT_CSS = `
:root{--built:#2da44e;--uptodate:#9be9a8;--model:#8250df;--infra:#e16f24;--failed:#cf222e;--timeout:#bf3989;--interrupted:#d4a72c;--blocked:#8c959f;--stale:#c6cdd5;--missing:#e6e9ed;--running:#0969da;
--cached:#d0d7de;--retried:#ff8182;--m0:#4e79a7;--m1:#59a14f;--m2:#76b7b2;--m3:#57606a;--m4:#9c755f;--m5:#a0cbe8;--m6:#8f9a3c;--m7:#2f4b7c;--m8:#1b7f79;--m9:#b9a3e3;
--fg:#1f2328;--muted:#656d76;--panel:#f6f8fa;--border:#d0d7de}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0;background:#fff}
header,main,footer{max-width:1500px;margin:0 auto;padding:0 20px}
header{padding-top:14px;border-bottom:1px solid var(--border)}
h1{font-size:20px;margin:0 0 8px}h1 .sid{font-family:ui-monospace,monospace;font-weight:500}
h2{font-size:16px;margin:22px 0 8px}h2 small,th small{color:var(--muted);font-weight:400;font-size:12px}
.state{font-size:13px;padding:2px 8px;border-radius:10px;background:var(--panel);border:1px solid var(--border);vertical-align:3px}
.st-finished{border-color:var(--built)}.st-interrupted{border-color:var(--interrupted)}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:6px}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0 0 12px}dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
.chip{display:inline-block;padding:0 8px;margin:0 4px 3px 0;border:1px solid var(--border);border-radius:10px;background:var(--panel);font-size:12.5px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.s-built{background:var(--built)}.s-uptodate{background:var(--uptodate)}.s-failed{background:var(--failed)}.s-timeout{background:var(--timeout)}
.s-model{background:var(--model)}.s-infra{background:var(--infra)}.s-interrupted{background:var(--interrupted)}.s-blocked{background:var(--blocked)}.s-stale{background:var(--stale)}.s-missing{background:var(--missing)}.s-running{background:var(--running)}
.b-cached{background:var(--cached)}.b-failed{background:var(--failed)}.b-timeout{background:var(--timeout)}.b-interrupted{background:var(--interrupted)}.b-retried{background:var(--retried)}.b-infra{background:var(--infra)}.b-model{background:var(--model)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12.5px;color:var(--muted);margin-bottom:8px}
table.models{border-collapse:collapse;font-size:13px}table.models th,table.models td{padding:4px 10px;border-bottom:1px solid var(--border);text-align:left;white-space:nowrap}
table.models td.n{text-align:right;font-variant-numeric:tabular-nums}td.c-error{color:var(--failed)}td.c-infra{color:var(--infra)}td.c-model{color:var(--model)}td.zero{color:var(--muted)}td.total{font-weight:600}table.models td.over{color:var(--muted);font-size:12.5px;white-space:normal;min-width:190px}
.sbar{display:flex;width:150px;height:14px;border-radius:3px;overflow:hidden;background:var(--missing)}.sbar i{display:block;height:100%}
.mbar{display:inline-block;width:80px;height:10px;margin-right:6px;vertical-align:-1px;background:var(--panel);border:1px solid var(--border);border-radius:3px;overflow:hidden}.mbar i{display:block;height:100%}
td.metric span{font-variant-numeric:tabular-nums}
.grow{display:flex;gap:8px;align-items:flex-start;margin-bottom:6px}.glabel{flex:none;width:110px;font-weight:600;overflow:hidden;text-overflow:ellipsis}
.gcells{display:flex;flex-wrap:wrap;gap:2px;flex:1}
.cell{display:block;width:11px;height:11px;border-radius:2px}.cell:hover{outline:2px solid var(--fg);outline-offset:0}
#grid canvas,#timeline canvas{display:block}
.fail{border:1px solid var(--border);border-radius:6px;margin:0 0 10px;padding:6px 10px}
.fhead{font-size:13px}.fhead .why{color:var(--muted)}.fhead .judged{color:var(--fg)}summary.fhead{cursor:pointer}
.fail.infra{border-left:4px solid var(--infra)}.fail.model{border-left:4px solid var(--model)}
.badge{color:#fff;padding:0 6px;border-radius:8px;font-size:12px}
pre.tail{margin:6px 0 2px;background:#0d1117;color:#e6edf3;padding:8px 10px;border-radius:6px;overflow:auto;max-height:300px;font:12px/1.35 ui-monospace,SFMono-Regular,Menlo,monospace}
.ok{color:var(--built)}
footer{color:var(--muted);font-size:12px;padding:20px}
#tip{position:fixed;display:none;pointer-events:none;z-index:10;max-width:560px;background:#1f2328;color:#fff;padding:6px 9px;border-radius:6px;font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace;box-shadow:0 3px 12px rgba(0,0,0,.25)}
#matrix{max-height:560px;overflow:auto;border:1px solid var(--border);border-radius:6px;display:inline-block;max-width:100%;vertical-align:top}
.mx-controls{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;font-size:13px;margin-bottom:8px}.mx-controls label{cursor:pointer}#mx-counts{color:var(--muted)}
table.mx{border-collapse:separate;border-spacing:0;font-size:12.5px;table-layout:fixed}
table.mx th,table.mx td{padding:2px 8px;border-bottom:1px solid #eaeef2;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
table.mx tbody td,table.mx tbody th{height:22px;line-height:17px}table.mx tr.sp td{height:auto;padding:0;border:0}td.empty{color:var(--muted);padding:8px}
table.mx thead th{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--border);text-align:center;vertical-align:bottom;font-weight:600}
table.mx thead th small{display:block;font-weight:400;font-size:11.5px}
table.mx th.inst{position:sticky;left:0;z-index:1;background:#fff;text-align:left;font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
table.mx thead th.inst{z-index:3;font:600 12.5px system-ui,sans-serif}
td.mx{text-align:center;font-variant-numeric:tabular-nums}td.mx[data-t]{cursor:pointer}td.mx:hover{outline:2px solid var(--fg);outline-offset:-2px}
td.mx.pass,.mxk.pass{background:var(--built);color:#fff}
td.mx.fail,.mxk.fail{background:#ffebe9;color:var(--failed)}
td.mx.none,.mxk.none{background:repeating-linear-gradient(135deg,#f6f8fa 0 4px,#eaeef2 4px 8px);color:var(--muted);font-size:11.5px}
td.mx.none.w-infra{color:var(--infra)}td.mx.none.w-error{color:var(--failed)}
td.mx.partial{box-shadow:inset 0 0 0 1px var(--infra)}
.mxk{display:inline-block;min-width:24px;padding:0 4px;margin-right:4px;border-radius:3px;font-style:normal;text-align:center;font-size:11.5px}.mxk.share{color:#1f2328}.mxk.flipk,td.flipm{color:#9a6700;font-weight:700}
table.mx td.flipm,table.mx th.flipm{text-align:center;padding:2px 0;text-overflow:clip}
tr.flip td.flipm,tr.flip th.inst{background:#fff8c5}tr.flip th.inst{font-weight:700;box-shadow:inset 3px 0 #bf8700}tr.flip td,tr.flip th{border-bottom-color:#d4a72c}
#tip .b{font-weight:700}#tip .dim{color:#9da7b3}#tip .k-model{color:#c297ff}#tip .k-infra{color:#ffa657}
`

export const CLIENT_JS = String.raw`
(function () {
  'use strict';
  var started = performance.now();
  var D = JSON.parse(document.getElementById('velora-data').textContent);
  var STATES = ['built', 'uptodate', 'failed', 'timeout', 'interrupted', 'blocked', 'stale', 'missing', 'running'];
  var LABEL = { built: 'built', uptodate: 'up to date', model: 'model failure', infra: 'infra error', failed: 'failed', timeout: 'timed out', interrupted: 'interrupted', blocked: 'blocked', stale: 'stale', missing: 'not built', running: 'running' };
  // a cell's colour: its state, but model failures (results) and infra errors (not results) apart
  var KINDS = ['built', 'uptodate', 'model', 'infra', 'failed', 'timeout', 'interrupted', 'blocked', 'stale', 'missing', 'running'];
  var CLASSES = ['ok', 'model', 'infra', 'error'];
  var OUTCOMES = ['built', 'cached', 'failed', 'timeout', 'interrupted', 'retried', 'infra', 'model'];
  var OUTCOME_LABEL = { built: 'built', cached: 'cached', failed: 'failed', timeout: 'timed out', interrupted: 'interrupted', retried: 'failed, retried', infra: 'infra error', model: 'model failure (a result)' };
  var BAD = { failed: 1, timeout: 1, interrupted: 1 };
  // Grid: one element per cell up to DOM_LIMIT targets; above that a single canvas, so the
  // page stays fast at tens of thousands of targets (22,940 draws in tens of ms).
  var DOM_LIMIT = 5000;
  var css = getComputedStyle(document.documentElement);
  var color = function (name) { return css.getPropertyValue('--' + name).trim(); };
  var KIND_COLOR = KINDS.map(color);
  var MODEL_COLOR = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(function (i) { return color('m' + i); });
  var OUTCOME_COLOR = { cached: color('cached'), failed: color('failed'), timeout: color('timeout'), interrupted: color('interrupted'), retried: color('retried'), infra: color('infra'), model: color('model') };
  var tip = document.getElementById('tip');

  function targetId(i) { var r = D.targets[i]; return D.models[r[0]] + '/' + D.datasets[r[1]] + '/' + r[2] + (r[7] > 1 ? '~' + r[7] : ''); }
  function logHref(i, step) {
    var parts = (D.logBase ? D.logBase.split('/') : []).concat(targetId(i).split('/'), [step + '.log']);
    return parts.map(function (p) { return p === '..' ? p : encodeURIComponent(p); }).join('/');
  }
  function dur(ms) {
    if (ms == null) return '';
    if (ms < 1000) return Math.round(ms) + 'ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
    var s = Math.round(ms / 1000);
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
  }
  /** The kind of a target's cell: model or infra by its class (row[6]), else its state. */
  function kindOf(r) { var c = CLASSES[r[6]]; return c === 'model' || c === 'infra' ? c : STATES[r[3]]; }
  /** "infra error (log matched /429/)", "model failure (output.jsonl error = ...)", or '' for a step row. */
  function judged(s) {
    var c = s && CLASSES[s[5]];
    if (c !== 'model' && c !== 'infra') return s && s[6] ? s[6] : '';
    return LABEL[c] + (s[6] ? ' (' + s[6] + ')' : '');
  }
  function val(v) { return typeof v === 'number' ? String(Math.round(v * 1e4) / 1e4) : JSON.stringify(v); }
  /** The step whose log a click opens: a failed one, else the last that ran; -1 if none ran. */
  function primaryStep(i) {
    var steps = D.targets[i][4], last = -1, model = -1;
    for (var k = 0; k < steps.length; k++) {
      var s = steps[k];
      if (!s || !s[1]) continue;
      if (BAD[STATES[s[0]]]) return k;
      if (CLASSES[s[5]] === 'model') model = k;
      last = k;
    }
    return model >= 0 ? model : last;
  }
  function targetLines(i) {
    var r = D.targets[i], kind = kindOf(r), lines = [[targetId(i), 'b']];
    if (kind === 'model') lines.push(['model failure: a result (scored), kept and not rerun', 'k-model']);
    else if (kind === 'infra') lines.push(['infra error: not a result, rerun by the next build', 'k-infra']);
    lines.push(['state: ' + LABEL[STATES[r[3]]]]);
    r[4].forEach(function (s, k) {
      if (!s) return;
      var j = judged(s);
      lines.push(['  ' + D.steps[k] + ': ' + LABEL[STATES[s[0]]] + (j ? ' · ' + j : '') + ' · attempts ' + s[1] + (s[3] != null ? ' · ' + dur(s[3]) : '') + (s[2] != null ? ' · exit ' + s[2] : '') + (s[4] ? ' · ' + s[4] : '')]);
    });
    var m = D.metrics.map(function (mt, k) { return r[5][k] == null ? null : mt.name + ' ' + val(r[5][k]); }).filter(Boolean);
    if (m.length) lines.push(['metrics: ' + m.join(', ')]);
    var p = primaryStep(i);
    lines.push([p >= 0 ? 'click: open ' + D.steps[p] + '.log' : 'no log (no step ran)', 'dim']);
    return lines;
  }
  function showTip(lines, x, y) {
    tip.textContent = '';
    lines.forEach(function (l) { var d = document.createElement('div'); d.textContent = l[0]; if (l[1]) d.className = l[1]; tip.appendChild(d); });
    tip.style.display = 'block';
    var w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, Math.min(x + 14, innerWidth - w - 4)) + 'px';
    tip.style.top = (y + 16 + h > innerHeight ? Math.max(4, y - h - 10) : y + 16) + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }
  /** For tests and links: scroll a point (from a function of the layout) into view, return it in client coordinates. */
  function inView(at) {
    var p = at();
    if (p && (p.y < 0 || p.y > innerHeight)) { window.scrollBy(0, p.y - innerHeight / 2); p = at(); }
    return p;
  }
  function canvasFor(root, w, h) {
    var cv = root.querySelector('canvas') || root.appendChild(document.createElement('canvas'));
    var dpr = window.devicePixelRatio || 1;
    cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
    cv.style.width = w + 'px'; cv.style.height = h + 'px';
    var ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { cv: cv, ctx: ctx };
  }

  var byModel = D.models.map(function () { return []; });
  D.targets.forEach(function (r, i) { byModel[r[0]].push(i); });
  var api = { gridMode: D.targets.length > DOM_LIMIT ? 'canvas' : 'dom', cellCenter: null, barCenter: null, matrix: null };
  window.velora = api;

  function domGrid(root) {
    var frag = document.createDocumentFragment();
    byModel.forEach(function (list, m) {
      if (!list.length) return;
      var row = document.createElement('div'); row.className = 'grow'; row.dataset.model = D.models[m];
      var lab = document.createElement('div'); lab.className = 'glabel'; lab.textContent = D.models[m]; lab.title = D.models[m];
      var cells = document.createElement('div'); cells.className = 'gcells';
      list.forEach(function (i) {
        var p = primaryStep(i), st = STATES[D.targets[i][3]], kind = kindOf(D.targets[i]);
        var c = document.createElement(p >= 0 ? 'a' : 'span');
        c.className = 'cell s-' + kind; c.dataset.i = i; c.dataset.state = st; c.dataset.kind = kind;
        c.setAttribute('aria-label', targetId(i) + ': ' + LABEL[kind]);
        if (p >= 0) c.href = logHref(i, D.steps[p]);
        cells.appendChild(c);
      });
      row.appendChild(lab); row.appendChild(cells); frag.appendChild(row);
    });
    root.appendChild(frag);
    root.addEventListener('mouseover', function (e) {
      var c = e.target.closest && e.target.closest('.cell');
      if (c) showTip(targetLines(+c.dataset.i), e.clientX, e.clientY); else hideTip();
    });
    root.addEventListener('mouseleave', hideTip);
    api.cellCenter = function (i) {
      var c = root.querySelector('.cell[data-i="' + i + '"]'); if (!c) return null;
      return inView(function () { var b = c.getBoundingClientRect(); return { x: b.left + b.width / 2, y: b.top + b.height / 2 }; });
    };
  }

  function canvasGrid(root) {
    var LW = 118, layout = null, cv = null, KIND = D.targets.map(function (r) { return KINDS.indexOf(kindOf(r)); });
    function draw() {
      var W = Math.max(300, root.clientWidth), maxN = 1;
      byModel.forEach(function (l) { maxN = Math.max(maxN, l.length); });
      var cell = Math.max(6, Math.min(14, Math.floor((W - LW) / maxN)));
      var perRow = Math.max(1, Math.floor((W - LW) / cell)), blocks = [], y = 0;
      byModel.forEach(function (list, m) {
        if (!list.length) return;
        var rows = Math.ceil(list.length / perRow);
        blocks.push({ m: m, list: list, y: y, rows: rows });
        y += Math.max(rows * cell, 16) + 8;
      });
      var c = canvasFor(root, W, y), ctx = c.ctx; cv = c.cv;
      cv.dataset.cells = String(D.targets.length);
      ctx.font = '600 13px system-ui, sans-serif'; ctx.fillStyle = '#1f2328'; ctx.textBaseline = 'top';
      blocks.forEach(function (b) { ctx.fillText(D.models[b.m], 0, b.y, LW - 8); });
      for (var s = 0; s < KINDS.length; s++) {
        ctx.fillStyle = KIND_COLOR[s];
        for (var k = 0; k < blocks.length; k++) {
          var b = blocks[k];
          for (var j = 0; j < b.list.length; j++) {
            if (KIND[b.list[j]] !== s) continue;
            ctx.fillRect(LW + (j % perRow) * cell, b.y + Math.floor(j / perRow) * cell, cell - 1, cell - 1);
          }
        }
      }
      layout = { cell: cell, perRow: perRow, blocks: blocks };
    }
    function hit(e) {
      var r = cv.getBoundingClientRect(), x = e.clientX - r.left - LW, y = e.clientY - r.top, L = layout;
      if (x < 0) return -1;
      for (var k = 0; k < L.blocks.length; k++) {
        var b = L.blocks[k];
        if (y < b.y || y >= b.y + b.rows * L.cell) continue;
        var col = Math.floor(x / L.cell), j = Math.floor((y - b.y) / L.cell) * L.perRow + col;
        return col < L.perRow && j < b.list.length ? b.list[j] : -1;
      }
      return -1;
    }
    draw();
    cv.addEventListener('mousemove', function (e) {
      var i = hit(e);
      if (i < 0) { hideTip(); cv.style.cursor = ''; return; }
      cv.style.cursor = primaryStep(i) >= 0 ? 'pointer' : '';
      showTip(targetLines(i), e.clientX, e.clientY);
    });
    cv.addEventListener('mouseleave', hideTip);
    cv.addEventListener('click', function (e) { var i = hit(e), p = i < 0 ? -1 : primaryStep(i); if (p >= 0) location.href = logHref(i, D.steps[p]); });
    api.cellCenter = function (i) {
      var L = layout;
      for (var k = 0; k < L.blocks.length; k++) {
        var j = L.blocks[k].list.indexOf(i), b = L.blocks[k];
        if (j >= 0) return inView(function () { var r = cv.getBoundingClientRect(); return { x: r.left + LW + (j % L.perRow + 0.5) * L.cell, y: r.top + b.y + (Math.floor(j / L.perRow) + 0.5) * L.cell }; });
      }
      return null;
    };
    return draw;
  }

  // ---- the model × instance matrix: a row per instance (dataset/instance), a column per model ----
  // A cell is the instance's score on the first rate metric: pass or fail, with samples the share
  // of the samples with a result that passed; or why there is none (infra, error, missing, ...).
  // Models disagree on an instance when two of them have different scores (what velora compare
  // counts fixed or regressed); those rows stand out, and sort first.
  // Above MATRIX_LIMIT instances only the disagreeing ones are drawn (at most MATRIX_LIMIT rows).
  var MATRIX_LIMIT = 5000;
  var PASS_RGB = [45, 164, 78], FAIL_RGB = [255, 235, 233];
  var MISSING = STATES.indexOf('missing');
  function pct(v) { return (v * 100).toFixed(1) + '%'; }
  function esc(s) { return String(s).replace(/[&<>"']/g, function (ch) { return '&#' + ch.charCodeAt(0) + ';'; }); }
  function num(n) { return n.toLocaleString('en-US'); }
  /** The rows of the matrix from the target rows; null without a rate metric. */
  function matrixOf() {
    var mi = -1;
    for (var k = 0; k < D.metrics.length; k++) if (D.metrics[k].agg === 'rate') { mi = k; break; }
    if (mi < 0) return null;
    var nM = D.models.length, rows = [], byKey = new Map(), has = D.models.map(function () { return false; });
    var sampled = D.models.map(function (_, m) { var st = D.modelStats[m]; return !!(st && st.samples > 1); });
    for (var i = 0; i < D.targets.length; i++) {
      var r = D.targets[i], key = r[1] + '\u0000' + r[2], row = byKey.get(key);
      if (!row) { row = { ds: r[1], key: r[2], cells: new Array(nM), order: rows.length, flip: false }; byKey.set(key, row); rows.push(row); }
      has[r[0]] = true;
      if (r[7] > 1) sampled[r[0]] = true;
      var c = row.cells[r[0]] || (row.cells[r[0]] = { pass: 0, n: 0, model: 0, t: [], why: [] });
      c.t.push(i);
      var cls = CLASSES[r[6]], v = r[5][mi];
      // (as the model's rate: a model failure without the value counts as a fail)
      if ((cls === 'ok' && v != null) || cls === 'model') { c.n++; if (v) c.pass++; if (cls === 'model') c.model++; }
      else c.why.push(cls === 'ok' ? 'no value' : cls === 'infra' || cls === 'error' ? cls : r[3] === MISSING ? 'missing' : STATES[r[3]]);
    }
    var cols = [], flips = 0, open = 0;
    for (var m = 0; m < nM; m++) if (has[m]) cols.push(m);
    rows.forEach(function (row) {
      var lo = 2, hi = -1, none = false;
      cols.forEach(function (m) {
        var c = row.cells[m];
        if (!c || !c.n) { none = true; return; }
        var s = c.pass / c.n;
        if (s < lo) lo = s;
        if (s > hi) hi = s;
      });
      row.flip = hi > lo;
      if (row.flip) flips++;
      if (none) open++;
    });
    return { metric: D.metrics[mi].name, cols: cols, rows: rows, flips: flips, open: open, sampled: sampled };
  }
  function shareColor(s) {
    var c = PASS_RGB.map(function (p, k) { return Math.round(FAIL_RGB[k] + (p - FAIL_RGB[k]) * s); });
    return 'rgb(' + c.join(',') + ')';
  }
  function whyText(c) {
    if (!c) return 'missing';
    var seen = {};
    return c.why.filter(function (w) { return seen[w] ? false : (seen[w] = true); }).join(', ');
  }
  function cellHtml(M, row, m, ri) {
    var c = row.cells[m], attrs = ' data-r="' + ri + '" data-m="' + m + '"';
    if (c && c.t.length === 1 && primaryStep(c.t[0]) >= 0) attrs += ' data-t="' + c.t[0] + '"';
    if (!c || !c.n) { var w = whyText(c); return '<td class="mx none w-' + esc(w.split(',')[0].replace(/ /g, '-')) + '"' + attrs + ' data-v="' + esc(w) + '">' + esc(w) + '</td>'; }
    var partial = c.t.length > c.n ? ' partial' : '', mf = c.model ? '◆' : '';
    if (!M.sampled[m]) return c.pass ? '<td class="mx pass' + partial + '"' + attrs + ' data-v="pass">✓' + mf + '</td>' : '<td class="mx fail' + partial + '"' + attrs + ' data-v="fail">✗' + mf + '</td>';
    var s = c.pass / c.n, v = c.pass + '/' + c.n;
    return '<td class="mx share' + partial + '"' + attrs + ' data-v="' + v + '" style="background:' + shareColor(s) + ';color:' + (s >= 0.6 ? '#fff' : '#1f2328') + '">' + v + mf + '</td>';
  }
  /** A model's column head: its name, the rate with its Wilson interval and n; pass@k and pass^k with samples. */
  function headOf(M, m) {
    var st = D.modelStats[m] || {}, r = st.rates && st.rates[M.metric], lines = [], title = M.metric;
    if (r && r.rate != null) {
      lines.push(pct(r.rate) + (r.ci95 ? ' [' + pct(r.ci95[0]) + '–' + pct(r.ci95[1]) + ']' : ''));
      title += ' ' + pct(r.rate) + ' over ' + r.n + ' results' + (r.ci95 ? ', 95% Wilson CI ' + pct(r.ci95[0]) + '–' + pct(r.ci95[1]) : '');
      var ks = Object.keys(r.passAtK || {}).map(Number), kmax = ks.length ? Math.max.apply(null, ks) : 0;
      if (kmax > 1) {
        lines.push('pass@' + kmax + ' ' + pct(r.passAtK[kmax]) + ' · pass^' + kmax + ' ' + pct(r.passHatK[kmax]));
        title += '; pass@' + kmax + ' ' + pct(r.passAtK[kmax]) + ', pass^' + kmax + ' ' + pct(r.passHatK[kmax]);
      }
      lines.push('n ' + r.n);
    } else if (st.metrics && st.metrics[M.metric] != null) lines.push(pct(st.metrics[M.metric]));
    else lines.push('no results');
    return {
      html: '<th data-model="' + esc(D.models[m]) + '" title="' + esc(title) + '"><i class="sw" style="background:var(--m' + (m % 10) + ')"></i>' + esc(D.models[m]) + lines.map(function (l) { return '<small>' + esc(l) + '</small>'; }).join('') + '</th>',
      width: Math.max(textWidth('600 12.5px system-ui, sans-serif', D.models[m]) + 14, Math.max.apply(null, lines.map(function (l) { return textWidth('11.5px system-ui, sans-serif', l); }))),
    };
  }
  var measurer = null;
  function textWidth(font, s) {
    measurer = measurer || document.createElement('canvas').getContext('2d');
    measurer.font = font;
    return Math.ceil(measurer.measureText(s).width);
  }
  function outcomeText(i, mi) {
    var r = D.targets[i], cls = CLASSES[r[6]], v = r[5][mi], j = '';
    r[4].forEach(function (s) { if (!j && s && (CLASSES[s[5]] === 'model' || CLASSES[s[5]] === 'infra') && s[6]) j = ' (' + s[6] + ')'; });
    if (cls === 'ok') return v == null ? 'no value' : v ? 'pass' : 'fail';
    if (cls === 'model') return (v ? 'pass' : 'fail') + ', model failure' + j;
    if (cls === 'infra') return 'no result: infra error' + j;
    if (cls === 'error') return 'no result: error (' + LABEL[STATES[r[3]]] + ')';
    return 'no result: ' + LABEL[STATES[r[3]]];
  }
  function matrix(root) {
    var M = matrixOf();
    if (!M) return;
    var mi = D.metrics.findIndex(function (x) { return x.name === M.metric; });
    var only = document.getElementById('mx-only'), sort = document.getElementById('mx-sort'), note = document.getElementById('mx-note'), counts = document.getElementById('mx-counts');
    var big = M.rows.length > MATRIX_LIMIT;
    counts.textContent = num(M.rows.length) + ' instances · ' + num(M.flips) + ' where models disagree' + (M.open ? ' · ' + num(M.open) + ' without a result for some model' : '');
    only.parentNode.lastChild.textContent = ' only instances where models disagree (' + num(M.flips) + ')';
    if (big) {
      only.checked = true; only.disabled = true;
      note.hidden = false;
      note.textContent = num(M.rows.length) + ' instances: only the ' + num(Math.min(M.flips, MATRIX_LIMIT)) + (M.flips > MATRIX_LIMIT ? ' first of the ' + num(M.flips) : '') + ' where models disagree are shown, so that the page stays fast.';
    }
    // Only the rows in view (and OVERSCAN on each side) are in the DOM, between two spacer rows:
    // 2,294 rows × 10 models as elements would take most of a second to lay out. Columns have fixed
    // widths (measured), so they do not move as rows come and go.
    var heads = M.cols.map(function (m) { return headOf(M, m); }), longest = 'instance';
    M.rows.forEach(function (r) { if (D.datasets[r.ds].length + 1 + r.key.length > longest.length) longest = D.datasets[r.ds] + '/' + r.key; });
    var widths = [26, Math.max(90, Math.min(440, textWidth('12px ui-monospace, SFMono-Regular, Menlo, monospace', longest) + 22))].concat(heads.map(function (h) { return Math.max(76, h.width + 22); }));
    var table = document.createElement('table');
    table.className = 'mx';
    table.style.width = widths.reduce(function (a, b) { return a + b; }, 0) + 'px';
    table.innerHTML = '<colgroup>' + widths.map(function (w) { return '<col style="width:' + w + 'px">'; }).join('') + '</colgroup><thead><tr><th class="flipm" title="models disagree">≠</th><th class="inst">instance</th>' + heads.map(function (h) { return h.html; }).join('') + '</tr></thead><tbody></tbody>';
    var tbody = table.tBodies[0], span = M.cols.length + 2;
    var ROW_H = 22, OVERSCAN = 20, list = [], first = -1, last = -1, raf = 0;
    function rowHtml(row) {
      var name = D.datasets[row.ds] + '/' + row.key, cells = '';
      for (var j = 0; j < M.cols.length; j++) cells += cellHtml(M, row, M.cols[j], row.order);
      return '<tr data-instance="' + esc(name) + '"' + (row.flip ? ' class="flip"' : '') + '><td class="flipm"' + (row.flip ? ' title="models disagree">≠' : '>') + '</td><th class="inst" title="' + esc(name) + '">' + esc(name) + '</th>' + cells + '</tr>';
    }
    function spacer(h) { return '<tr class="sp" style="height:' + h + 'px"><td colspan="' + span + '"></td></tr>'; }
    function paint(force) {
      var top = Math.max(0, root.scrollTop - table.tHead.offsetHeight), h = root.clientHeight || 560;
      var f = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN), l = Math.min(list.length, Math.ceil((top + h) / ROW_H) + OVERSCAN);
      if (!force && f === first && l === last) return;
      first = f; last = l;
      var html = [];
      if (f > 0) html.push(spacer(f * ROW_H));
      for (var k = f; k < l; k++) html.push(rowHtml(list[k]));
      if (l < list.length) html.push(spacer((list.length - l) * ROW_H));
      tbody.innerHTML = html.join('') || '<tr><td colspan="' + span + '" class="empty">No instance where models disagree.</td></tr>';
    }
    function draw() {
      list = M.rows;
      if (only.checked) list = list.filter(function (r) { return r.flip; });
      else if (sort.value === 'flips') list = list.filter(function (r) { return r.flip; }).concat(list.filter(function (r) { return !r.flip; }));
      if (list.length > MATRIX_LIMIT) list = list.slice(0, MATRIX_LIMIT);
      api.matrix.shown = list.length;
      root.scrollTop = 0;
      paint(true);
      // the real row height, once: the spacers stand for rows of it
      var tr = tbody.querySelector('tr[data-instance]'), rh = tr ? tr.getBoundingClientRect().height : ROW_H;
      if (rh > 0 && Math.abs(rh - ROW_H) > 0.25) { ROW_H = rh; paint(true); }
    }
    only.addEventListener('change', draw);
    sort.addEventListener('change', draw);
    root.addEventListener('scroll', function () { if (!raf) raf = requestAnimationFrame(function () { raf = 0; paint(false); }); });
    api.matrix = {
      metric: M.metric, instances: M.rows.length, flips: M.flips, shown: 0, limited: big,
      /** The instances in the order shown (all of them, not only those in the DOM). */
      order: function () { return list.map(function (r) { return D.datasets[r.ds] + '/' + r.key; }); },
      /** Scroll the matrix to its k-th row and draw the rows around it now. */
      scrollToRow: function (k) { root.scrollTop = k * ROW_H; paint(false); },
    };
    root.appendChild(table);
    draw();
    table.addEventListener('mouseover', function (e) {
      var td = e.target.closest && e.target.closest('td.mx');
      if (!td) { hideTip(); return; }
      var row = M.rows[+td.dataset.r], m = +td.dataset.m, c = row.cells[m], lines = [[D.models[m] + ' · ' + D.datasets[row.ds] + '/' + row.key, 'b']];
      if (!c) lines.push(['no target: not in this report (missing)']);
      else {
        if (c.n) lines.push([M.metric + ': ' + (M.sampled[m] ? c.pass + ' of ' + c.n + ' samples with a result passed' : c.pass ? 'pass' : 'fail') + (c.t.length > c.n ? '; ' + (c.t.length - c.n) + ' without a result (' + whyText(c) + ')' : '')]);
        c.t.slice(0, 12).forEach(function (i) { lines.push(['  ' + targetId(i) + ': ' + outcomeText(i, mi), CLASSES[D.targets[i][6]] === 'model' ? 'k-model' : CLASSES[D.targets[i][6]] === 'infra' ? 'k-infra' : '']); });
        if (c.t.length > 12) lines.push(['  … ' + (c.t.length - 12) + ' more samples', 'dim']);
        if (td.dataset.t) lines.push(['click: open ' + D.steps[primaryStep(+td.dataset.t)] + '.log', 'dim']);
      }
      if (row.flip) lines.push(['models disagree on this instance', 'dim']);
      showTip(lines, e.clientX, e.clientY);
    });
    table.addEventListener('mouseleave', hideTip);
    table.addEventListener('click', function (e) {
      var td = e.target.closest && e.target.closest('td.mx[data-t]');
      if (td) location.href = logHref(+td.dataset.t, D.steps[primaryStep(+td.dataset.t)]);
    });
  }

  function niceStep(span, n) {
    var steps = [100, 250, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 144e5, 288e5, 864e5];
    for (var i = 0; i < steps.length; i++) if (span / steps[i] <= n) return steps[i];
    return steps[steps.length - 1];
  }

  function timeline(root) {
    var T = D.timeline, B = T.bars, N = B.length / 8, LW = 44, AX = 22, layout = null, cv = null;
    if (!N) { root.textContent = 'No step ran in this session.'; return null; }
    var perLane = [], why = {}, lastAttempt = {}, M = T.matched || [];
    for (var i = 0; i < N; i++) (perLane[B[i * 8]] = perLane[B[i * 8]] || []).push(i);
    for (var m = 0; m < M.length; m += 2) why[M[m]] = T.texts[M[m + 1]];
    // an attempt is retried when a later attempt of the same step ran
    for (var a = 0; a < N; a++) { var key = B[a * 8 + 4] + ':' + B[a * 8 + 5]; if (B[a * 8 + 4] >= 0) lastAttempt[key] = Math.max(lastAttempt[key] || 0, B[a * 8 + 7]); }
    function barOutcome(i) {
      var o = OUTCOMES[B[i * 8 + 6]], text = OUTCOME_LABEL[o] || o;
      if (why[i]) text += ' (' + why[i] + ')';
      if (o === 'infra' && B[i * 8 + 4] >= 0) text += (lastAttempt[B[i * 8 + 4] + ':' + B[i * 8 + 5]] > B[i * 8 + 7] ? ', retried' : ', not retried: rerun by the next build');
      return text;
    }
    function barColor(i) {
      var o = OUTCOMES[B[i * 8 + 6]];
      return o === 'built' ? MODEL_COLOR[B[i * 8 + 3] % 10] : OUTCOME_COLOR[o] || '#999';
    }
    function draw() {
      var W = Math.max(300, root.clientWidth), laneH = Math.max(3, Math.min(16, Math.floor(360 / Math.max(1, T.lanes))));
      var H = T.lanes * laneH + AX, span = Math.max(1, T.t1 - T.t0), sx = (W - LW - 4) / span;
      var c = canvasFor(root, W, H), ctx = c.ctx; cv = c.cv;
      ctx.fillStyle = '#f6f8fa'; ctx.fillRect(LW, 0, W - LW, T.lanes * laneH);
      var last = '';
      for (var i = 0; i < N; i++) {
        var col = barColor(i);
        if (col !== last) { ctx.fillStyle = col; last = col; }
        var x = LW + B[i * 8 + 1] * sx, w = Math.max(1, (B[i * 8 + 2] - B[i * 8 + 1]) * sx - 1);
        ctx.fillRect(x, B[i * 8] * laneH + 0.5, w, Math.max(1, laneH - 1));
      }
      ctx.fillStyle = '#656d76'; ctx.strokeStyle = '#d0d7de'; ctx.font = '11px system-ui, sans-serif'; ctx.textBaseline = 'top';
      var step = niceStep(span, Math.max(2, Math.floor((W - LW) / 90)));
      for (var t = 0; t <= span; t += step) {
        var tx = LW + t * sx;
        ctx.beginPath(); ctx.moveTo(tx + 0.5, 0); ctx.lineTo(tx + 0.5, T.lanes * laneH + 4); ctx.stroke();
        ctx.fillText(dur(t), tx + 2, T.lanes * laneH + 6);
      }
      var every = Math.ceil(12 / laneH);
      ctx.textBaseline = 'middle';
      for (var l = 0; l < T.lanes; l += every) ctx.fillText(String(l + 1), 4, l * laneH + laneH / 2, LW - 8);
      layout = { laneH: laneH, sx: sx };
    }
    function hit(e) {
      var r = cv.getBoundingClientRect(), lane = Math.floor((e.clientY - r.top) / layout.laneH);
      var t = (e.clientX - r.left - LW) / layout.sx, slop = 2 / layout.sx, list = perLane[lane];
      if (!list || t < -slop) return -1;
      for (var k = 0; k < list.length; k++) { var i = list[k]; if (B[i * 8 + 1] - slop <= t && t <= B[i * 8 + 2] + slop) return i; }
      return -1;
    }
    function barLines(i) {
      var ti = B[i * 8 + 4], o = OUTCOMES[B[i * 8 + 6]];
      return [[ti >= 0 ? targetId(ti) : D.models[B[i * 8 + 3]], 'b'], [D.steps[B[i * 8 + 5]] + ' attempt ' + B[i * 8 + 7] + ': ' + barOutcome(i), o === 'infra' || o === 'model' ? 'k-' + o : ''],
        ['started +' + dur(B[i * 8 + 1]) + ', took ' + dur(B[i * 8 + 2] - B[i * 8 + 1]) + ', lane ' + (B[i * 8] + 1)], [ti >= 0 ? 'click: open ' + D.steps[B[i * 8 + 5]] + '.log' : '', 'dim']];
    }
    draw();
    cv.addEventListener('mousemove', function (e) { var i = hit(e); if (i < 0) { hideTip(); cv.style.cursor = ''; return; } cv.style.cursor = 'pointer'; showTip(barLines(i), e.clientX, e.clientY); });
    cv.addEventListener('mouseleave', hideTip);
    cv.addEventListener('click', function (e) { var i = hit(e); if (i >= 0 && B[i * 8 + 4] >= 0) location.href = logHref(B[i * 8 + 4], D.steps[B[i * 8 + 5]]); });
    api.barCenter = function (i) {
      return inView(function () { var r = cv.getBoundingClientRect(); return { x: r.left + LW + ((B[i * 8 + 1] + B[i * 8 + 2]) / 2) * layout.sx, y: r.top + (B[i * 8] + 0.5) * layout.laneH }; });
    };
    return draw;
  }

  var redraws = [];
  var matrixRoot = document.getElementById('matrix');
  if (matrixRoot) { var mt0 = performance.now(); matrix(matrixRoot); if (api.matrix) api.matrix.ms = performance.now() - mt0; }
  var gridRoot = document.getElementById('grid');
  if (api.gridMode === 'dom') domGrid(gridRoot); else redraws.push(canvasGrid(gridRoot));
  var tl = timeline(document.getElementById('timeline'));
  if (tl) redraws.push(tl);
  var pending = 0;
  window.addEventListener('resize', function () {
    clearTimeout(pending);
    pending = setTimeout(function () { redraws.forEach(function (f) { f(); }); }, 120);
  });
  api.renderMs = performance.now() - started;
  document.documentElement.dataset.rendered = '1';
})();
`
