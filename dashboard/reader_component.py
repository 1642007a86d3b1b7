"""The reading workstation in the browser (an ``st.components.v2`` component: inline HTML/CSS/JS).

It holds the case on screen and the next unread ones (:mod:`core.reader_study.desk` sends them),
and does everything a read needs without the server: type keys 1/2/3, certainty 4/5/6, Enter,
←/→ and the case list, and the viewer (wheel or ↑/↓ slices, drag window/level, 7/8/9 presets,
0 reset, +/− zoom, shift+drag pan, O outline). In a localisation study a click on the slice marks
where the reader sees the lesion, a drag a box, right-drag sets window/level and Backspace removes
the last mark; the marks go with the answer. Enter shows the next case at once; the answer
waits in the browser (memory and local storage) until the server acknowledges it, and goes with
the next sync, retried until then. The JS is constant code: no user or database text is put into
it, and every text from the server is set with ``textContent``.
"""

from __future__ import annotations

import streamlit as st

from dashboard.slice_drawing import SLICE_JS

_HTML = """
<div class="csr" data-pending="">
  <div class="csr-image">
    <div class="csv-root" data-drawn="">
      <div class="csv-main">
        <canvas class="csv-canvas" width="520" height="520" tabindex="0"
                aria-label="Image viewer"></canvas>
        <div class="csv-info" aria-live="polite"></div>
        <div class="csr-legend"></div>
      </div>
      <div class="csv-side"></div>
    </div>
  </div>
  <div class="csr-panel">
    <h3 class="csr-title"></h3>
    <div class="csr-progress"></div>
    <div class="csr-nav">
      <button type="button" class="csr-prev">Previous</button>
      <label>Go to case <select class="csr-jump"></select></label>
      <button type="button" class="csr-next">Next</button>
    </div>
    <div class="csr-done" role="status"></div>
    <div class="csr-model"></div>
    <div class="csr-heading">Type</div>
    <div class="csr-row csr-types"></div>
    <div class="csr-heading">Certainty</div>
    <div class="csr-row csr-levels"></div>
    <div class="csr-answer"></div>
    <div class="csr-marks" aria-live="polite"></div>
    <button type="button" class="csr-submit"></button>
    <div class="csr-keys"></div>
    <div class="csr-message" role="alert"></div>
    <div class="csr-saving" role="status" aria-live="polite"></div>
  </div>
</div>
"""

_CSS = """
.csr { display: flex; gap: 20px; align-items: flex-start; font: 14px sans-serif;
  color: var(--st-text-color, #262730); }
.csr-image { flex: 0 0 auto; }
.csr-panel { flex: 1 1 0; display: flex; flex-direction: column; gap: 6px; min-width: 0; }
.csr-title { margin: 0; font-size: 1.3rem; font-weight: 600; }
.csr-progress, .csr-keys, .csr-legend { font-size: 12px; opacity: 0.8; }
.csr-nav { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.csr-nav select { margin-left: 4px; }
.csr-heading { font-weight: 600; margin-top: 4px; }
.csr-row { display: flex; gap: 8px; }
.csr button { font: inherit; padding: 6px 10px; border-radius: 8px; cursor: pointer;
  border: 1px solid rgba(49, 51, 63, 0.25); background: var(--st-background-color, #fff);
  color: inherit; }
.csr-row button { flex: 1 1 0; }
.csr button[aria-pressed="true"], .csr .csr-submit { background: var(--st-primary-color, #ff4b4b);
  color: #fff; border-color: transparent; }
.csr button:disabled { opacity: 0.45; cursor: default; }
.csr-submit { width: 100%; padding: 8px; }
.csr-message:empty, .csr-done:empty, .csr-model:empty { display: none; }
.csr-message { color: #b00020; }
.csr-done { color: #137333; }
.csr-saving { font-size: 12px; }
.csr[data-pending-late="yes"] .csr-saving { color: #b00020; font-weight: 600; }
.csr-stopped { padding: 12px; border-radius: 8px; background: rgba(255, 75, 75, 0.12); }
.csv-root { display: flex; gap: 12px; align-items: flex-start; font: 13px sans-serif; }
.csv-main { display: flex; flex-direction: column; gap: 4px; width: var(--csv-size, 470px); }
.csv-canvas { background: #000; cursor: crosshair; width: var(--csv-size, 470px);
  height: var(--csv-size, 470px); border-radius: 4px; outline: none; }
.csv-info { font-variant-numeric: tabular-nums; font-size: 13px; }
.csv-side { display: flex; flex-direction: column; gap: 8px; }
.csv-side figure { margin: 0; }
.csv-side img { width: var(--csv-side, 140px); border-radius: 4px; }
.csv-side figcaption { font-size: 12px; opacity: 0.8; }
.csr-marks { font-size: 12px; }
.csr-marks:empty { display: none; }
"""

_JS = (
    SLICE_JS
    + r"""
const DESKS = (window.__cervixReader = window.__cervixReader || new Map());  // per reader and arm
const QUEUES = (window.__cervixQueues = window.__cervixQueues || new Map());  // per reader
const LATE_MS = 8000;  // answers unsaved this long: say the connection is down
const RESEND_MS = 3000;
const KEEP = 8;  // cases held in memory at most
const MARK_COLOUR = "#00e5ff";
const CLICK_PX = 4;  // a press that moves less than this is a click (a point), more a box

function parseMessage(data) {
  const bytes = data instanceof Uint8Array ? data
    : data instanceof ArrayBuffer ? new Uint8Array(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const tail = 8 + length;
  const blob = (i) => {
    const [start, size] = header.blobs[i];
    return bytes.slice(tail + start, tail + start + size);
  };
  return { header, blob };
}

async function inflate(blob, w, h) {
  const stream = new Blob([blob]).stream().pipeThrough(new DecompressionStream("deflate"));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  const n = w * h, raw = new Uint16Array(n);
  for (let y = 0; y < h; y++) {
    let acc = 0;
    for (let x = 0, i = y * w; x < w; x++, i++) {
      acc = (acc + (bytes[i] | (bytes[n + i] << 8))) & 0xffff;
      raw[i] = acc;
    }
  }
  return raw;
}

function storageKey(desk) { return "cervixscope.pending." + desk; }

function loadQueue(desk) {
  try { return JSON.parse(localStorage.getItem(storageKey(desk)) || "[]"); }
  catch (e) { return []; }
}

function newDesk(header) {
  return { desk: header.desk, cases: new Map(), work: [], localRead: new Map(), pos: null,
    arm: header.arm, picks: new Map(), marks: new Map(), sentAt: 0,
    stopped: null, message: "", note: "", view: null, shownAt: 0, frame: 0, doneSent: false,
    refusedCount: 0, firstPending: 0 };
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export default function (component) {
  const { data, parentElement } = component;
  const $ = (sel) => parentElement.querySelector(sel);
  const root = $(".csr"), viewerRoot = $(".csv-root"), canvas = $(".csv-canvas");
  const msg = parseMessage(data);
  const H = msg.header;
  const stateKey = H.desk + ":" + H.arm;
  if (!DESKS.has(stateKey)) DESKS.set(stateKey, newDesk(H));
  if (!QUEUES.has(H.desk)) QUEUES.set(H.desk, { items: loadQueue(H.desk) });
  const S = DESKS.get(stateKey), Q = QUEUES.get(H.desk);
  S.send = component.setTriggerValue;
  S.inFlight = false;
  if (H.size) root.style.setProperty("--csv-size", H.size + "px");

  // ---- the reply: acknowledgements, refusals, the worklist, new cases
  const settled = new Set([...H.acks, ...H.refused.map((r) => r[0])]);
  if (settled.size) Q.items = Q.items.filter((a) => !settled.has(a.attempt));
  if (H.refused.length) {
    S.refusedCount += H.refused.length;
    S.message = `${H.refused.length} answer(s) could not be saved: ${H.refused[0][1]} `
      + "They are kept for the study admin.";
  }
  persist();
  if (H.status === "stopped") S.stopped = H.message;
  if (H.work) {
    S.work = H.work;
    for (const [p, , read] of H.work) if (read) S.localRead.delete(p);
  }
  for (const entry of H.cases || []) addCase(entry, msg.blob);
  if (S.pos === null && H.start) S.pos = H.start;
  if (S.arm !== H.arm) { S.arm = H.arm; }
  markPosition();

  // The browser owns the case on screen: a reply to an older sync carries the server's older
  // idea of it into the URL, so every reply writes the position back (a reload returns here).
  function markPosition() {
    if (S.pos === null) return;
    const url = new URL(window.location.href);
    if (url.searchParams.get("at") === S.arm + ":" + S.pos) return;
    url.searchParams.set("at", S.arm + ":" + S.pos);
    window.history.replaceState(window.history.state, "", url);
  }

  function persist() {
    try { localStorage.setItem(storageKey(S.desk), JSON.stringify(Q.items)); } catch (e) { /* full */ }
  }

  function addCase(entry, blob) {
    const old = S.cases.get(entry.position);
    const slices = (entry.slices || []).map((s, i) => {
      const had = old && old.slices[i];  // the rest of a case: keep what is decoded already
      return had && had.raw && had.w === s.w ? { ...s, raw: had.raw, span: had.span } : { ...s, raw: null };
    });
    const c = { ...entry, slices, partial: slices.some((s) => s.blob === null), askedRest: false };
    if (old && old.answer && !entry.answer) c.answer = old.answer;
    S.cases.set(entry.position, c);
    const order = slices.map((_, i) => i);
    const first = entry.start || 0;
    order.splice(order.indexOf(first), 1);
    order.unshift(first);  // the slice shown first is decoded first, the rest after it
    const blobs = slices.map((s) => (s.blob === null || s.raw ? null : blob(s.blob)));
    (async () => {
      for (const i of order) {
        const s = slices[i];
        if (!blobs[i]) continue;
        s.raw = await inflate(blobs[i], s.w, s.h);
        let top = 1;
        for (let k = 0; k < s.raw.length; k++) if (s.raw[k] > top) top = s.raw[k];
        s.span = top * s.scale;
        if (S.cases.get(entry.position) === c && S.pos === entry.position) renderImage();
      }
    })();
  }

  function isRead(p) {
    if (S.localRead.has(p)) return true;
    const row = S.work.find((w) => w[0] === p);
    return !!(row && row[2]);
  }
  function nRead() { return S.work.filter((w) => isRead(w[0])).length; }
  function nextUnread(from) {
    const after = S.work.filter((w) => w[0] > from && !isRead(w[0]));
    const before = S.work.filter((w) => w[0] < from && !isRead(w[0]));
    const next = after[0] || before[0];
    return next ? next[0] : null;
  }

  function sync(extra) {
    if (!S.send) return;
    const now = Date.now();
    S.sentAt = now;
    S.inFlight = true;
    S.send("sync", { at: S.pos, have: [...S.cases.keys()].filter((p) => S.cases.get(p).slices),
      pending: Q.items.map((a) => ({ ...a, age_ms: Math.max(0, now - a.answered_wall) })),
      ...(extra || {}) });
  }

  // ---- the viewer
  const ctx = canvas.getContext("2d");
  const off = document.createElement("canvas");
  function freshView(c) {
    const p = c.presets[0];
    return { pos: c.position, slice: c.start || 0, center: p.center, width: p.width, zoom: 1,
      panX: 0, panY: 0, roi: true };
  }

  function renderImage() {
    const c = S.cases.get(S.pos);
    const info = $(".csv-info");
    if (!c || !c.slices.length) {
      ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
      info.textContent = c ? (c.image_problem || "No image for this case.") : "Loading the case…";
      return;
    }
    if (!S.view || S.view.pos !== c.position) S.view = freshView(c);
    const view = S.view;
    const s = c.slices[view.slice];
    if (!s.raw) { info.textContent = `Slice ${view.slice + 1} / ${c.slices.length} · loading…`; return; }
    const { x0, y0, fit } = drawSlice(ctx, off, s, view, c.roi_colour);
    S.geom = { x0, y0, fit, w: s.w, h: s.h };
    if (H.localise) drawMarks(view.slice, x0, y0, fit);
    info.textContent = `Slice ${view.slice + 1} / ${c.slices.length} · level ${Math.round(view.center)}`
      + ` · window ${Math.round(view.width)} · zoom ${view.zoom.toFixed(2)}×`
      + (s.roi ? (view.roi ? " · outline on" : " · outline off") : "");
    if (S.shownFor !== c.position) { S.shownFor = c.position; S.shownAt = performance.now(); }
    const ds = viewerRoot.dataset;
    ds.slice = String(view.slice + 1); ds.slices = String(c.slices.length);
    ds.decoded = String(c.slices.filter((x) => x.raw).length);
    ds.center = String(view.center); ds.width = String(view.width);
    ds.zoom = String(view.zoom); ds.roi = view.roi ? "on" : "off";
    ds.viewId = S.arm + ":" + c.position;
    if (H.localise) {
      ds.marks = JSON.stringify(currentMarks());
      ds.fit = String(fit); ds.originX = String(x0); ds.originY = String(y0);
    }
    ds.drawn = ds.viewId + "#" + (++S.frame);
    ds.drawnAt = String(performance.now());  // benchmarks: Enter to the next case drawn
  }

  // ---- lesion marks (localisation studies): whole image pixels, a point or a box
  function currentMarks() {
    if (S.marks.has(S.pos)) return S.marks.get(S.pos);
    const c = S.cases.get(S.pos);
    return (c && c.answer && c.answer.marks) || [];
  }
  function drawMarks(slice, x0, y0, fit) {
    ctx.strokeStyle = MARK_COLOUR; ctx.lineWidth = 2;
    const boxes = currentMarks().filter((m) => m.slice === slice);
    if (S.dragBox && S.dragBox.slice === slice) boxes.push(S.dragBox);
    for (const m of boxes) {
      if (m.x !== undefined) {  // a point: a ring round the pixel's centre
        const cx = x0 + (m.x + 0.5) * fit, cy = y0 + (m.y + 0.5) * fit;
        ctx.beginPath(); ctx.arc(cx, cy, 7, 0, 2 * Math.PI);
        ctx.moveTo(cx - 11, cy); ctx.lineTo(cx - 3, cy); ctx.moveTo(cx + 3, cy); ctx.lineTo(cx + 11, cy);
        ctx.stroke();
      } else {
        const a = Math.min(m.x0, m.x1), b = Math.min(m.y0, m.y1);
        ctx.strokeRect(x0 + a * fit, y0 + b * fit, (Math.abs(m.x1 - m.x0) + 1) * fit, (Math.abs(m.y1 - m.y0) + 1) * fit);
      }
    }
  }
  function pixelAt(e) {  // the image pixel under the mouse, or null off the image
    if (!S.geom) return null;
    const rect = canvas.getBoundingClientRect();
    const cx = (e.clientX - rect.left) * canvas.width / rect.width;
    const cy = (e.clientY - rect.top) * canvas.height / rect.height;
    const x = Math.floor((cx - S.geom.x0) / S.geom.fit), y = Math.floor((cy - S.geom.y0) / S.geom.fit);
    return x >= 0 && y >= 0 && x < S.geom.w && y < S.geom.h ? [x, y] : null;
  }
  function setMarks(marks) {
    S.marks.set(S.pos, marks);
    S.message = "";
    render();
  }
  function removeLastMark() {
    const marks = currentMarks();
    if (marks.length) setMarks(marks.slice(0, -1));
  }
  function marksText() {
    const n = currentMarks().length;
    return n ? `${n} mark${n > 1 ? "s" : ""} on this case (Backspace removes the last).`
      : "No mark yet: click where you see the lesion, or drag a box round it.";
  }

  function step(delta) {
    const c = S.cases.get(S.pos);
    if (!c || !S.view) return;
    S.view.slice = Math.max(0, Math.min(c.slices.length - 1, S.view.slice + delta));
    renderImage();
  }
  function zoomBy(f) { if (S.view) { S.view.zoom = Math.max(0.5, Math.min(8, S.view.zoom * f)); renderImage(); } }

  // ---- the answer panel
  function currentPick() {
    if (S.picks.has(S.pos)) return S.picks.get(S.pos);
    const c = S.cases.get(S.pos);
    return c && c.answer ? c.answer : null;
  }

  function percentText(pick) {
    const chosen = H.levels[pick.certainty];
    const rest = (100 - chosen) / (H.classes.length - 1);
    return H.classes.map((n) => `${n} ${+(n === pick.label ? chosen : rest).toFixed(6)}%`).join(" · ");
  }

  function buttons(sel, names, keys, pressed, onPick) {
    const row = $(sel);
    if (row.children.length !== names.length) {
      row.replaceChildren(...names.map((n) => {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = n; b.dataset.name = n;
        b.title = "key " + keys[n];
        b.addEventListener("click", () => onPick(n));
        return b;
      }));
    }
    for (const b of row.children) b.setAttribute("aria-pressed", String(b.dataset.name === pressed));
  }

  function render() {
    if (S.stopped) {
      root.replaceChildren(Object.assign(document.createElement("div"),
        { className: "csr-stopped", textContent: S.stopped + (S.refusedCount
          ? ` ${S.refusedCount} answer(s) could not be saved; they are kept for the study admin.` : "") }));
      root.dataset.stopped = "yes";
      root.dataset.pending = String(Q.items.length);
      return;
    }
    const c = S.cases.get(S.pos);
    const n = S.work.length, done = nRead();
    const row = S.work.find((w) => w[0] === S.pos);
    $(".csr-title").textContent = row ? `Case ${row[1]} (${S.pos} of ${n})` : "Loading…";
    $(".csr-progress").textContent = `${done} of ${n} read`;
    $(".csr-prev").disabled = !(S.pos > 1);
    $(".csr-next").disabled = !(S.pos < n);
    const jump = $(".csr-jump");
    const labels = S.work.map((w) => w[1] + (isRead(w[0]) ? " ✓" : ""));
    if (jump.options.length !== n || labels.some((t, i) => jump.options[i].textContent !== t)) {
      jump.replaceChildren(...S.work.map((w, i) => {
        const o = document.createElement("option");
        o.value = String(w[0]); o.textContent = labels[i];
        return o;
      }));
    }
    jump.value = String(S.pos);
    $(".csr-done").textContent = n && done === n
      ? "All cases are read. You can still go back and change an answer." : "";
    const model = $(".csr-model");
    if (c && c.model) {
      const b = document.createElement("strong"); b.textContent = "AI model";
      const p = document.createElement("div");
      p.textContent = H.classes.map((k) => `${k} ${Math.round(100 * c.model[k])}%`).join(" · ");
      model.replaceChildren(b, p);
    } else model.replaceChildren();
    if (c && c.model_note) model.append(Object.assign(document.createElement("div"), { textContent: c.model_note }));
    const pick = currentPick();
    buttons(".csr-types", H.classes, H.type_keys, pick && pick.label, pickType);
    buttons(".csr-levels", Object.keys(H.levels), H.level_keys, pick && pick.certainty, pickLevel);
    root.dataset.pick = pick ? pick.label + ":" + pick.certainty : "";
    const stored = c && c.answer && pick === c.answer;
    $(".csr-answer").textContent = `${stored ? "Stored answer" : "Answer"}: ${pick ? percentText(pick) : "none yet"}`;
    $(".csr-marks").textContent = H.localise ? marksText() : "";
    $(".csr-submit").textContent = isRead(S.pos) ? "Update" : "Submit and next";
    $(".csr-keys").textContent = "Keys: " + H.legend + (H.localise && H.mark_legend ? " · " + H.mark_legend : "");
    $(".csr-legend").textContent = H.localise && H.mark_viewer_legend ? H.mark_viewer_legend : H.viewer_legend;
    $(".csr-message").textContent = S.message || S.note;
    const side = $(".csv-side");
    side.replaceChildren(...((c && c.side) || []).map((pic) => {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.src = pic.src; img.alt = pic.title;
      const cap = document.createElement("figcaption"); cap.textContent = pic.title;
      fig.append(img, cap);
      return fig;
    }));
    renderSaving();
    renderImage();
  }

  function renderSaving() {
    const waiting = Q.items.length, line = $(".csr-saving");
    if (!line) return;  // the desk was replaced by the reason it stopped
    const late = waiting && Date.now() - Math.min(...Q.items.map((a) => a.answered_wall)) > LATE_MS;
    root.dataset.pending = String(waiting);
    root.dataset.pendingLate = late ? "yes" : "no";
    line.textContent = !waiting ? "All answers saved."
      : late ? `${waiting} answer(s) waiting to be saved: the server does not answer. They are kept in this browser and sent when it is back.`
      : `Saving ${waiting} answer(s)…`;
  }

  function go(p) {
    if (p < 1 || p > S.work.length || p === S.pos) return;
    S.pos = p; S.message = ""; S.note = "";
    markPosition();
    render();
    if (!askRest()) sync();
  }

  function pickType(label) {
    const old = currentPick();
    S.picks.set(S.pos, { label, certainty: old && old.label === label ? old.certainty : H.default_level });
    S.message = ""; render();
  }
  function pickLevel(level) {
    const old = currentPick();
    if (!old) { S.message = "Choose a type first (keys 1, 2, 3)."; render(); return; }
    S.picks.set(S.pos, { label: old.label, certainty: level });
    S.message = ""; render();
  }

  function submit() {
    const c = S.cases.get(S.pos), row = S.work.find((w) => w[0] === S.pos);
    const pick = currentPick();
    if (!row || !c) return;
    if (!pick) { S.message = "Choose a type first (keys 1, 2, 3), then press Enter."; render(); return; }
    const revisit = isRead(S.pos);
    const marks = H.localise ? currentMarks().map((m) => ({ ...m })) : null;
    Q.items.push({ attempt: uuid(), arm: S.arm, position: S.pos, display_id: row[1],
      label: pick.label, certainty: pick.certainty, answered_wall: Date.now(),
      duration_ms: Math.round(performance.now() - S.shownAt), ...(marks ? { marks } : {}) });
    persist();
    S.localRead.set(S.pos, true);
    c.answer = { label: pick.label, certainty: pick.certainty, ...(marks ? { marks } : {}) };
    S.picks.delete(S.pos);
    S.marks.delete(S.pos);
    S.message = "";
    if (revisit) { S.note = "Answer updated."; render(); sync(); return; }
    const next = nextUnread(S.pos);
    if (next === null) { S.note = ""; render(); sync(); return; }
    S.pos = next; S.note = "";
    markPosition();
    render();
    sync();
  }

  function onKey(e) {
    if (S.stopped) return;
    const t = e.composedPath ? e.composedPath()[0] : e.target;
    const tag = t && t.tagName ? t.tagName.toUpperCase() : "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (t && t.isContentEditable)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const c = S.cases.get(S.pos);
    const type = H.classes.find((n) => H.type_keys[n] === e.key);
    const level = Object.keys(H.levels).find((n) => H.level_keys[n] === e.key);
    const preset = c && c.presets ? c.presets.find((p) => p.key === e.key) : null;
    if (type) pickType(type);
    else if (level) pickLevel(level);
    else if (e.key === "Enter") submit();
    else if (H.localise && (e.key === "Backspace" || e.key === "Delete")) removeLastMark();
    else if (e.key === "ArrowLeft") go(S.pos - 1);
    else if (e.key === "ArrowRight") go(S.pos + 1);
    else if (e.key === "ArrowDown") step(1);
    else if (e.key === "ArrowUp") step(-1);
    else if (e.key === "+" || e.key === "=") zoomBy(1.25);
    else if (e.key === "-" || e.key === "_") zoomBy(0.8);
    else if (e.key === "0" && c && c.presets) { S.view = freshView(c); renderImage(); }
    else if ((e.key === "o" || e.key === "O") && S.view) { S.view.roi = !S.view.roi; renderImage(); }
    else if (preset && S.view) { S.view.center = preset.center; S.view.width = preset.width; renderImage(); }
    else return;
    e.preventDefault();
    e.stopPropagation();
  }
  function onWheel(e) {
    e.preventDefault();
    if (e.ctrlKey) zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15); else step(e.deltaY > 0 ? 1 : -1);
  }
  let drag = null;
  function onDown(e) {
    canvas.focus(); e.preventDefault();
    if (H.localise && e.button === 0 && !e.shiftKey && S.view) {  // a mark: a click or a drag
      const p = pixelAt(e);
      if (p) drag = { mark: true, start: p, x: e.clientX, y: e.clientY, slice: S.view.slice };
      return;
    }
    const pan = H.localise ? e.shiftKey : e.shiftKey || e.button !== 0;
    drag = { x: e.clientX, y: e.clientY, pan };
  }
  function onMove(e) {
    if (drag && drag.mark) {
      const p = pixelAt(e) || drag.end || drag.start;
      drag.end = p;
      const far = Math.hypot(e.clientX - drag.x, e.clientY - drag.y) >= CLICK_PX;
      S.dragBox = far ? { slice: drag.slice, x0: drag.start[0], y0: drag.start[1], x1: p[0], y1: p[1] } : null;
      renderImage();
      return;
    }
    if (!drag || !S.view) return;
    const c = S.cases.get(S.pos), s = c && c.slices[S.view.slice];
    if (!s || !s.raw) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    drag.x = e.clientX; drag.y = e.clientY;
    if (drag.pan) { S.view.panX += dx; S.view.panY += dy; }
    else {
      const per = s.span / Math.max(canvas.clientWidth, 1);
      S.view.width = Math.max(1, S.view.width + dx * per);
      S.view.center = S.view.center - dy * per;
    }
    renderImage();
  }
  function onUp(e) {
    const done = drag;
    drag = null;
    if (!done || !done.mark) return;
    const far = Math.hypot(e.clientX - done.x, e.clientY - done.y) >= CLICK_PX;
    const end = pixelAt(e) || done.end || done.start;
    S.dragBox = null;
    const [x, y] = done.start;
    const mark = far
      ? { slice: done.slice, x0: Math.min(x, end[0]), y0: Math.min(y, end[1]), x1: Math.max(x, end[0]), y1: Math.max(y, end[1]) }
      : { slice: done.slice, x, y };
    if (currentMarks().length >= (H.max_marks || 20)) { S.message = `A case holds at most ${H.max_marks || 20} marks.`; render(); return; }
    setMarks([...currentMarks(), mark]);
  }
  function askRest() {  // a case shown by its first slice: the rest of the series, once
    const c = S.cases.get(S.pos);
    if (c && c.partial && !c.askedRest && !S.stopped) { c.askedRest = true; sync({ rest: [S.pos] }); return true; }
    return false;
  }
  function tick() {
    renderSaving();
    const due = Date.now() - S.sentAt > (S.inFlight ? 5 * RESEND_MS : RESEND_MS);
    const c = S.cases.get(S.pos);
    if (due && c && c.partial) { c.askedRest = false; askRest(); return; }
    if (due && !S.stopped && (Q.items.length || !c)) sync();  // lost on the way: resend
  }

  if (window.__cervixReaderCleanup) window.__cervixReaderCleanup();
  const onPrev = () => go(S.pos - 1), onNext = () => go(S.pos + 1);
  const onJump = (e) => go(parseInt(e.target.value, 10));
  document.addEventListener("keydown", onKey);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("mousedown", onDown);
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  $(".csr-prev").addEventListener("click", onPrev);
  $(".csr-next").addEventListener("click", onNext);
  $(".csr-jump").addEventListener("change", onJump);
  $(".csr-submit").onclick = submit;
  const timer = setInterval(tick, 1000);
  const cleanup = () => {
    clearInterval(timer);
    document.removeEventListener("keydown", onKey);
    canvas.removeEventListener("wheel", onWheel);
    canvas.removeEventListener("mousedown", onDown);
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
    $(".csr-prev").removeEventListener("click", onPrev);
    $(".csr-next").removeEventListener("click", onNext);
    $(".csr-jump").removeEventListener("change", onJump);
    if (window.__cervixReaderCleanup === cleanup) window.__cervixReaderCleanup = null;
  };
  window.__cervixReaderCleanup = cleanup;

  // keep the cases worth holding: the one on screen, its neighbours and the unread ahead
  const keep = new Set([S.pos, S.pos - 1, S.pos + 1]);
  for (let p = S.pos, k = 0; k < (H.prefetch || 2); k++) { p = nextUnread(p); if (p === null) break; keep.add(p); }
  for (const p of [...S.cases.keys()]) if (S.cases.size > KEEP && !keep.has(p)) S.cases.delete(p);

  render();
  const allRead = S.work.length && S.work.every((w) => w[2]);
  if (askRest()) { /* the rest of the case on screen comes with this sync */ }
  else if (Q.items.length && !settled.size) sync();  // answers from before a reload or a restart
  else if (!S.cases.has(S.pos) && !S.stopped) sync();
  else if (allRead && !Q.items.length && !S.doneSent && !S.stopped) { S.doneSent = true; sync({ done: true }); }
  return cleanup;
}
"""
)

_reader = st.components.v2.component("cervixscope_reader", html=_HTML, css=_CSS, js=_JS)


def reading_workstation(message: bytes, *, key: str, on_sync) -> None:
    """Mount the workstation on one reply of :func:`core.reader_study.desk.sync`; ``on_sync``
    runs (before the next script run) when the browser sends a sync."""
    _reader(data=message, key=key, on_sync_change=on_sync)
