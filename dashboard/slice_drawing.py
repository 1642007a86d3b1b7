"""The JavaScript both image components share (the reading workstation and the viewer): one slice
of raw 16-bit pixels windowed to 8-bit grey and drawn fitted, zoomed and panned on a canvas.

Prepended to each component's ES module, so it is defined once and never sent as data.
"""

SLICE_JS = r"""
// Slice s ({w, h, raw, scale, offset, roi}) windowed at view.center/view.width into the
// offscreen canvas, then drawn on ctx's canvas fitted, zoomed and panned, with the ROI outline
// when view.roi. Returns where the image landed: {x0, y0, fit} (canvas pixels per image pixel).
function drawSlice(ctx, off, s, view, roiColour) {
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
  const W = ctx.canvas.width, H = ctx.canvas.height;
  const fit = Math.min(W / s.w, H / s.h) * view.zoom;
  const x0 = (W - s.w * fit) / 2 + view.panX, y0 = (H - s.h * fit) / 2 + view.panY;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, W, H);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, x0, y0, s.w * fit, s.h * fit);
  if (view.roi && s.roi) {
    const [a, b, c, d] = s.roi;
    ctx.strokeStyle = roiColour; ctx.lineWidth = 1.5;
    ctx.strokeRect(x0 + a * fit, y0 + b * fit, (c - a) * fit, (d - b) * fit);
  }
  return { x0, y0, fit };
}
"""
