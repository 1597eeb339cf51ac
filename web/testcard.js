// The test card an output shows instead of the picture (/output/testcard 1): a grid
// in canvas pixels (its lines run on across neighbouring projectors, so overlaps can
// be lined up), circles (round only when the projector's aspect is right), the
// output's name, its edges, and its blend zones hatched. Drawn in the page, so the
// server's one encode is untouched; the page's blend is applied over it.

// Draw `mapping`'s card into `card`, a canvas covering its slice at the output's
// own pixel size `frameSize` [w, h] (so thin lines survive); `canvasSize` [W, H].
export function drawTestcard(card, mapping, canvasSize, frameSize) {
  const [W, H] = canvasSize;
  const [rx, ry, rw, rh] = mapping.rect;
  card.width = Math.max(64, Math.min(4096, frameSize[0]));
  card.height = Math.max(64, Math.min(4096, frameSize[1]));
  const ctx = card.getContext("2d");
  const cw = card.width, ch = card.height;
  ctx.fillStyle = "#2a3442";
  ctx.fillRect(0, 0, cw, ch);
  // Grid: 16 cells across the canvas, square in canvas pixels.
  const pitch = W / 16;
  const toX = (px) => ((px / W - rx) / rw) * cw;
  const toY = (py) => ((py / H - ry) / rh) * ch;
  ctx.lineWidth = 2;
  for (let k = 0; k * pitch <= W + 1e-6; k++) {
    ctx.strokeStyle = k % 4 === 0 ? "#f0f0f0" : "#8a96a8";
    const x = toX(k * pitch);
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, ch); ctx.stroke();
  }
  for (let k = 0; k * pitch <= H + 1e-6; k++) {
    ctx.strokeStyle = k % 4 === 0 ? "#f0f0f0" : "#8a96a8";
    const y = toY(k * pitch);
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(cw, y); ctx.stroke();
  }
  // Circles: one filling the slice's height, four small ones at its quarters.
  ctx.strokeStyle = "#ffd23f";
  ctx.lineWidth = 4;
  const r = 0.45 * Math.min(cw, ch);
  ctx.beginPath(); ctx.arc(cw / 2, ch / 2, r, 0, 2 * Math.PI); ctx.stroke();
  for (const [fx, fy] of [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]) {
    ctx.beginPath(); ctx.arc(fx * cw, fy * ch, r / 4, 0, 2 * Math.PI); ctx.stroke();
  }
  // Blend zones, hatched, with their widths.
  const [bl, br, bt, bb] = mapping.blend;
  const zones = [[0, 0, bl * cw, ch], [cw - br * cw, 0, br * cw, ch], [0, 0, cw, bt * ch], [0, ch - bb * ch, cw, bb * ch]];
  ctx.save();
  for (const [x, y, w, h] of zones) {
    if (w <= 0 || h <= 0) continue;
    ctx.fillStyle = "rgba(255, 80, 200, 0.25)";
    ctx.fillRect(x, y, w, h);
    ctx.save();
    ctx.beginPath(); ctx.rect(x, y, w, h); ctx.clip();
    ctx.strokeStyle = "rgba(255, 120, 220, 0.6)";
    ctx.lineWidth = 2;
    for (let d = -ch; d < cw + ch; d += 24) { ctx.beginPath(); ctx.moveTo(d, 0); ctx.lineTo(d + ch, ch); ctx.stroke(); }
    ctx.restore();
  }
  ctx.restore();
  // Edges: a frame just inside the slice, and which side is which.
  ctx.strokeStyle = "#ff3b30";
  ctx.lineWidth = 8;
  ctx.strokeRect(4, 4, cw - 8, ch - 8);
  ctx.fillStyle = "#ffffff";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.font = `bold ${Math.round(Math.min(cw, ch) / 6)}px sans-serif`;
  ctx.fillText(mapping.name, cw / 2, ch / 2);
  ctx.font = `${Math.max(11, Math.round(Math.min(cw, ch) / 28))}px sans-serif`;
  const fixed = (values) => values.map((v) => Number(v.toFixed(3))).join(" ");
  ctx.fillText(`rect ${fixed(mapping.rect)}   blend ${fixed(mapping.blend)}   gamma ${mapping.gamma}`, cw / 2, ch / 2 + Math.min(cw, ch) / 8);
  const pad = Math.min(cw, ch) / 20;
  ctx.fillText("top", cw / 2, pad); ctx.fillText("bottom", cw / 2, ch - pad);
  ctx.save(); ctx.translate(pad, ch / 2); ctx.rotate(-Math.PI / 2); ctx.fillText("left", 0, 0); ctx.restore();
  ctx.save(); ctx.translate(cw - pad, ch / 2); ctx.rotate(Math.PI / 2); ctx.fillText("right", 0, 0); ctx.restore();
}
