"""The one image viewer of the reading page and the case browser (an ``st.components.v2``
component: inline HTML/CSS/JS, no build step, nothing fetched from a network).

It draws every slice of a case from raw 16-bit pixels (``core.reader_study.viewer_data``) and does
all viewing in the browser, without a server round trip: wheel or up/down for slices, drag for
window/level, 7/8/9 presets, 0 reset, +/- or ctrl+wheel zoom, shift+drag pan, O toggles the ROI
outline. Only the payload's fields reach the browser; the JS below is constant code (no user or
database text is ever put into it, and captions are set with ``textContent``).

Lesion marks in ``marks`` (one entry per author) are drawn in their author's colour. With
``annotate`` the viewer is the annotation tool: the left button draws a box (B) or a polygon (P:
click the corners, click the first one or press Enter to close), the right button sets
window/level, Delete removes the selected (else the last) mark of the slice, Esc drops an open
polygon, Enter saves and opens the next case without marks, left/right save and move. A save is
one trigger value ``save`` = ``{view, base, marks, move}``; the browser keeps the marks it holds
until the server's ``annotate.version`` moves past ``base``, so a refused save loses nothing.
"""

from __future__ import annotations

import streamlit as st

from dashboard.slice_drawing import SLICE_JS

KEY_LEGEND = (
    "wheel or ↑/↓ slice · drag window/level · 7/8/9 presets · 0 reset · +/− zoom · "
    "shift+drag pan · O outline"
)
ANNOTATE_LEGEND = (
    "B box · P polygon (click corners, Enter or first corner closes) · Delete remove · Esc drop "
    "open polygon · Enter save and next unmarked · ←/→ save and move · right-drag window/level · "
    "wheel or ↑/↓ slice · shift+drag pan · +/− zoom"
)

_HTML = """
<div class="csv-root" data-drawn="">
  <div class="csv-main">
    <canvas class="csv-canvas" width="520" height="520" tabindex="0"
            aria-label="Image viewer"></canvas>
    <div class="csv-info" aria-live="polite"></div>
    <div class="csv-note" role="status"></div>
  </div>
  <div class="csv-side"></div>
</div>
"""

_CSS = """
.csv-root { display: flex; gap: 12px; align-items: flex-start; font: 13px sans-serif; }
.csv-main { display: flex; flex-direction: column; gap: 4px; }
.csv-canvas { background: #000; cursor: crosshair; width: var(--csv-size, 520px);
  height: var(--csv-size, 520px); border-radius: 4px; outline: none; }
.csv-info { color: var(--st-text-color, #333); font-variant-numeric: tabular-nums; }
.csv-side { display: flex; flex-direction: column; gap: 8px; }
.csv-note { color: var(--st-text-color, #333); font-size: 12px; min-height: 1em; }
.csv-side figure { margin: 0; }
.csv-side img { width: var(--csv-side, 150px); image-rendering: auto; border-radius: 4px; }
.csv-side figcaption { font-size: 12px; opacity: 0.8; }
"""

_JS = (
    SLICE_JS
    + r"""
const STORE = (window.__cervixViewer = window.__cervixViewer || { views: new Map() });

function decode(slice) {
  const bytes = Uint8Array.from(atob(slice.pixels), (ch) => ch.charCodeAt(0));
  return new Uint16Array(bytes.buffer);
}

function freshView(data) {
  const p = data.presets[0];
  return { slice: 0, center: p.center, width: p.width, zoom: 1, panX: 0, panY: 0, roi: true };
}

function copyMarks(marks) { return marks.map((m) => ({ ...m, points: m.points.map((p) => [...p]) })); }

function markBox(m) {
  const xs = m.points.map((p) => p[0]), ys = m.points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function traceMark(ctx, m, at) {
  ctx.beginPath();
  if (m.kind === "polygon") {
    m.points.forEach((p, i) => { const [x, y] = at(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    ctx.closePath();
  } else {
    const [a, b, c, d] = markBox(m); const [x0, y0] = at([a, b]); const [x1, y1] = at([c, d]);
    ctx.rect(x0, y0, x1 - x0, y1 - y0);
  }
}

export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".csv-root");
  const canvas = root.querySelector(".csv-canvas");
  const info = root.querySelector(".csv-info");
  const side = root.querySelector(".csv-side");
  if (data.size) root.style.setProperty("--csv-size", data.size + "px");
  if (data.side_size) root.style.setProperty("--csv-side", data.side_size + "px");
  const slices = data.slices.map((s) => {
    const raw = decode(s);
    let top = 1;
    for (let i = 0; i < raw.length; i++) if (raw[i] > top) top = raw[i];
    return { ...s, raw, span: top * s.scale };  // drag sensitivity: the full range per canvas
  });
  if (!STORE.views.has(data.view_id)) STORE.views.set(data.view_id, freshView(data));
  const view = STORE.views.get(data.view_id);
  view.slice = Math.min(view.slice, slices.length - 1);
  const note = root.querySelector(".csv-note");
  const A = data.annotate || null;
  // The marks being edited survive reruns of the same case until the server stores them.
  const keep = A ? "cervixscope.annotate." + A.store_key : "";
  if (A && (!view.work || view.base !== A.version || view.viewOf !== data.view_id)) {
    view.work = copyMarks(A.marks); view.base = A.version; view.viewOf = data.view_id;
    view.open = null; view.selected = -1; view.tool = view.tool || "box";
    // marks drawn but not stored before a reload or a crash come back from local storage
    let kept = null;
    try { kept = JSON.parse(localStorage.getItem(keep) || "null"); } catch (err) { kept = null; }
    if (kept && kept.base === A.version) view.work = copyMarks(kept.marks);
    else localStorage.removeItem(keep);
  }
  function persist() {
    try { localStorage.setItem(keep, JSON.stringify({ base: view.base, marks: view.work })); }
    catch (err) { /* storage full or off: the marks still live in this page */ }
  }
  if (A) note.textContent = A.note || "";
  const ctx = canvas.getContext("2d");
  const off = document.createElement("canvas");
  let frame = 0;

  function draw() {
    const s = slices[view.slice];
    const { x0, y0, fit } = drawSlice(ctx, off, s, view, data.roi_colour);
    const at = (p) => [x0 + p[0] * fit, y0 + p[1] * fit];
    geometry = { x0, y0, fit };
    ctx.setLineDash([5, 4]);
    for (const group of data.marks || []) {
      ctx.strokeStyle = group.colour; ctx.lineWidth = 1.5;
      for (const m of group.marks) if (m.slice === view.slice) { traceMark(ctx, m, at); ctx.stroke(); }
    }
    ctx.setLineDash([]);
    if (A) drawWork(at);
    info.textContent = `Slice ${view.slice + 1} / ${slices.length} · level ${Math.round(view.center)}`
      + ` · window ${Math.round(view.width)} · zoom ${view.zoom.toFixed(2)}×`
      + (s.roi ? (view.roi ? " · outline on" : " · outline off") : "");
    root.dataset.slice = String(view.slice + 1);
    root.dataset.slices = String(slices.length);
    root.dataset.center = String(view.center);
    root.dataset.width = String(view.width);
    root.dataset.zoom = String(view.zoom);
    root.dataset.roi = view.roi ? "on" : "off";
    root.dataset.viewId = data.view_id;
    if (A) {
      root.dataset.marks = JSON.stringify(view.work.map(({ slice, kind, points }) => ({ slice, kind, points })));
      root.dataset.tool = view.tool;
      root.dataset.base = String(view.base);
      root.dataset.fit = String(fit); root.dataset.originX = String(x0); root.dataset.originY = String(y0);
    }
    root.dataset.drawn = data.view_id + "#" + (++frame);
    root.dataset.drawnAt = String(performance.now());  // benchmarks: Enter to the next case drawn
  }

  let geometry = { x0: 0, y0: 0, fit: 1 };
  function drawWork(at) {
    ctx.strokeStyle = A.colour; ctx.lineWidth = 2;
    view.work.forEach((m, i) => {
      if (m.slice !== view.slice) return;
      traceMark(ctx, m, at); ctx.lineWidth = i === view.selected ? 3.5 : 2; ctx.stroke();
    });
    if (view.open && view.open.points.length) {
      ctx.beginPath(); ctx.lineWidth = 2;
      view.open.points.forEach((p, i) => { const [x, y] = at(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
      if (view.open.cursor) { const [x, y] = at(view.open.cursor); ctx.lineTo(x, y); }
      ctx.stroke();
    }
    if (view.dragBox) { traceMark(ctx, { kind: "box", points: view.dragBox }, at); ctx.stroke(); }
  }

  function imagePoint(e) {  // a mouse position in image pixel edges, on the whole-pixel grid
    const rect = canvas.getBoundingClientRect(), s = slices[view.slice];
    const cx = (e.clientX - rect.left) * canvas.width / rect.width;
    const cy = (e.clientY - rect.top) * canvas.height / rect.height;
    const x = Math.round((cx - geometry.x0) / geometry.fit), y = Math.round((cy - geometry.y0) / geometry.fit);
    return [Math.max(0, Math.min(s.w, x)), Math.max(0, Math.min(s.h, y))];
  }

  function save(move) {
    if (view.open && view.open.points.length >= 3) closePolygon();
    view.open = null;
    const marks = view.work.map(({ slice, kind, points }) => ({ slice, kind, points }));
    note.textContent = "Saving…";
    component.setTriggerValue("save", { view: data.view_id, base: view.base, marks, move, at: Date.now() });
  }

  function closePolygon() {
    view.work.push({ slice: view.slice, kind: "polygon", points: view.open.points });
    view.selected = view.work.length - 1; view.open = null; persist();
  }

  function removeMark() {
    if (view.open) { view.open = null; draw(); return; }
    let i = view.selected;
    if (i < 0 || !view.work[i] || view.work[i].slice !== view.slice) {
      i = view.work.map((m) => m.slice).lastIndexOf(view.slice);
    }
    if (i >= 0) view.work.splice(i, 1);
    view.selected = -1; persist(); draw();
  }

  function onAnnotateKey(e) {
    const k = e.key;
    if (k === "b" || k === "B") { view.tool = "box"; view.open = null; }
    else if (k === "p" || k === "P") view.tool = "polygon";
    else if (k === "Delete" || k === "Backspace") { removeMark(); e.preventDefault(); return true; }
    else if (k === "Escape") view.open = null;
    else if (k === "Enter") { save("next-unmarked"); e.preventDefault(); return true; }
    else if (k === "ArrowRight") { save("next"); e.preventDefault(); return true; }
    else if (k === "ArrowLeft") { save("previous"); e.preventDefault(); return true; }
    else return false;
    draw(); e.preventDefault(); return true;
  }

  function step(delta) {
    view.slice = Math.max(0, Math.min(slices.length - 1, view.slice + delta));
    if (A) { view.open = null; view.selected = -1; }  // an outline belongs to one slice
    draw();
  }

  function zoomBy(factor) {
    view.zoom = Math.max(0.5, Math.min(8, view.zoom * factor));
    draw();
  }

  function preset(p) { view.center = p.center; view.width = p.width; draw(); }

  function onKey(e) {
    const t = e.target;
    const tag = t && t.tagName ? t.tagName.toUpperCase() : "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (t && t.isContentEditable)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (A && onAnnotateKey(e)) return;
    const found = data.presets.find((p) => p.key === e.key);
    if (e.key === "ArrowDown") step(1);
    else if (e.key === "ArrowUp") step(-1);
    else if (e.key === "+" || e.key === "=") zoomBy(1.25);
    else if (e.key === "-" || e.key === "_") zoomBy(0.8);
    else if (e.key === "0") { Object.assign(view, freshView(data)); draw(); }
    else if (e.key === "o" || e.key === "O") { view.roi = !view.roi; draw(); }
    else if (found) preset(found);
    else return;
    e.preventDefault();
  }

  function onWheel(e) {
    e.preventDefault();
    if (e.ctrlKey) zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15);
    else step(e.deltaY > 0 ? 1 : -1);
  }

  let drag = null;
  function onDown(e) {
    canvas.focus();
    e.preventDefault();
    if (A && e.button === 0 && !e.shiftKey) {
      const p = imagePoint(e);
      if (view.tool === "box") { view.dragBox = [p, p]; drag = { draw: true }; }
      else {
        if (!view.open) view.open = { points: [] };
        const first = view.open.points[0];
        const near = first && Math.hypot(first[0] - p[0], first[1] - p[1]) * geometry.fit < 8;
        if (near && view.open.points.length >= 3) closePolygon();
        else view.open.points.push(p);
        draw();
      }
      return;
    }
    const pan = A ? e.shiftKey : e.shiftKey || e.button !== 0;
    drag = { x: e.clientX, y: e.clientY, pan };
  }
  function onMove(e) {
    if (A && view.open && view.tool === "polygon" && !drag) { view.open.cursor = imagePoint(e); draw(); return; }
    if (!drag) return;
    if (drag.draw) { view.dragBox = [view.dragBox[0], imagePoint(e)]; draw(); return; }
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    drag.x = e.clientX; drag.y = e.clientY;
    if (drag.pan) { view.panX += dx; view.panY += dy; }
    else {
      const per = slices[view.slice].span / Math.max(canvas.clientWidth, 1);
      view.width = Math.max(1, view.width + dx * per);
      view.center = view.center - dy * per;
    }
    draw();
  }
  function onUp(e) {
    if (drag && drag.draw) {
      const [[ax, ay], [bx, by]] = [view.dragBox[0], imagePoint(e)];
      view.dragBox = null;
      if (Math.abs(bx - ax) >= 1 && Math.abs(by - ay) >= 1) {
        view.work.push({ slice: view.slice, kind: "box",
          points: [[Math.min(ax, bx), Math.min(ay, by)], [Math.max(ax, bx), Math.max(ay, by)]] });
        view.selected = view.work.length - 1; persist();
      }
      draw();
    }
    drag = null;
  }

  if (STORE.cleanup) STORE.cleanup();
  document.addEventListener("keydown", onKey);
  canvas.addEventListener("wheel", onWheel, { passive: false });
  canvas.addEventListener("mousedown", onDown);
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  const cleanup = () => {
    document.removeEventListener("keydown", onKey);
    canvas.removeEventListener("wheel", onWheel);
    canvas.removeEventListener("mousedown", onDown);
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
    if (STORE.cleanup === cleanup) STORE.cleanup = null;
  };
  STORE.cleanup = cleanup;

  side.replaceChildren(...data.side.map((pic) => {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = pic.src; img.alt = pic.title;
    const cap = document.createElement("figcaption");
    cap.textContent = pic.title;
    fig.append(img, cap);
    return fig;
  }));
  draw();
  return cleanup;
}
"""
)

_viewer = st.components.v2.component("cervixscope_viewer", html=_HTML, css=_CSS, js=_JS)


def image_viewer(
    payload: dict, *, key: str, size: int = 520, side_size: int = 150, on_save=None
) -> None:
    """Mount the viewer on ``payload`` (``core.reader_study.viewer_data.viewer_payload``, with
    ``marks`` and ``annotate`` when wanted); ``on_save`` runs when the annotator saves."""
    data = {**payload, "size": int(size), "side_size": int(side_size)}
    if on_save is None:
        _viewer(data=data, key=key)
    else:
        _viewer(data=data, key=key, on_save_change=on_save)
