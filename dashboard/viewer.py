"""The one image viewer of the reading page and the case browser (an ``st.components.v2``
component: inline HTML/CSS/JS, no build step, nothing fetched from a network).

It draws every slice of a case from raw 16-bit pixels (``core.reader_study.viewer_data``) and does
all viewing in the browser, without a server round trip: wheel or up/down for slices, drag for
window/level, 7/8/9 presets, 0 reset, +/- or ctrl+wheel zoom, shift+drag pan, O toggles the ROI
outline. Only the payload's fields reach the browser; the JS below is constant code (no user or
database text is ever put into it, and captions are set with ``textContent``).
"""

from __future__ import annotations

import streamlit as st

KEY_LEGEND = (
    "wheel or ↑/↓ slice · drag window/level · 7/8/9 presets · 0 reset · +/− zoom · "
    "shift+drag pan · O outline"
)

_HTML = """
<div class="csv-root" data-drawn="">
  <div class="csv-main">
    <canvas class="csv-canvas" width="520" height="520" tabindex="0"
            aria-label="Image viewer"></canvas>
    <div class="csv-info" aria-live="polite"></div>
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
.csv-side figure { margin: 0; }
.csv-side img { width: var(--csv-side, 150px); image-rendering: auto; border-radius: 4px; }
.csv-side figcaption { font-size: 12px; opacity: 0.8; }
"""

_JS = r"""
const STORE = (window.__cervixViewer = window.__cervixViewer || { views: new Map() });

function decode(slice) {
  const bytes = Uint8Array.from(atob(slice.pixels), (ch) => ch.charCodeAt(0));
  return new Uint16Array(bytes.buffer);
}

function freshView(data) {
  const p = data.presets[0];
  return { slice: 0, center: p.center, width: p.width, zoom: 1, panX: 0, panY: 0, roi: true };
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
  const ctx = canvas.getContext("2d");
  const off = document.createElement("canvas");
  let frame = 0;

  function draw() {
    const s = slices[view.slice];
    off.width = s.w; off.height = s.h;
    const img = new ImageData(s.w, s.h);
    const lo = view.center - view.width / 2, k = 255 / Math.max(view.width, 1e-6);
    for (let i = 0; i < s.raw.length; i++) {
      const v = (s.raw[i] * s.scale + s.offset - lo) * k;
      const g = v < 0 ? 0 : v > 255 ? 255 : v;
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g;
      img.data[4 * i + 3] = 255;
    }
    off.getContext("2d").putImageData(img, 0, 0);
    const W = canvas.width, H = canvas.height;
    const fit = Math.min(W / s.w, H / s.h) * view.zoom;
    const x0 = (W - s.w * fit) / 2 + view.panX, y0 = (H - s.h * fit) / 2 + view.panY;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, W, H);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(off, x0, y0, s.w * fit, s.h * fit);
    if (view.roi && s.roi) {
      const [a, b, c, d] = s.roi;
      ctx.strokeStyle = data.roi_colour; ctx.lineWidth = 1.5;
      ctx.strokeRect(x0 + a * fit, y0 + b * fit, (c - a) * fit, (d - b) * fit);
    }
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
    root.dataset.drawn = data.view_id + "#" + (++frame);
    root.dataset.drawnAt = String(performance.now());  // benchmarks: Enter to the next case drawn
  }

  function step(delta) {
    view.slice = Math.max(0, Math.min(slices.length - 1, view.slice + delta));
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
    drag = { x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button !== 0 };
    canvas.focus();
    e.preventDefault();
  }
  function onMove(e) {
    if (!drag) return;
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
  function onUp() { drag = null; }

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

_viewer = st.components.v2.component("cervixscope_viewer", html=_HTML, css=_CSS, js=_JS)


def image_viewer(payload: dict, *, key: str, size: int = 520, side_size: int = 150) -> None:
    """Mount the viewer on ``payload`` (``core.reader_study.viewer_data.viewer_payload``)."""
    _viewer(data={**payload, "size": int(size), "side_size": int(side_size)}, key=key)
