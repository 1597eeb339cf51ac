// Projector mapping maths, the same as server/outputs/mapping.py, name for name
// (meshCells is cells there).
// Points are [x, y] fractions; y grows downwards. Matrices are 3x3 row-major arrays.

// The 3x3 projective map H taking the four `src` points onto the four `dst` points.
// For (x, y): [u', v', w'] = H [x, y, 1] and the image is (u'/w', v'/w'). With
// h33 = 1 each correspondence gives two linear equations:
//   u = h11 x + h12 y + h13 - h31 x u - h32 y u
//   v = h21 x + h22 y + h23 - h31 x v - h32 y v
// and the 8 x 8 system is solved by Gaussian elimination with partial pivoting.
export function homography(src, dst) {
  const rows = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = src[i];
    const [u, v] = dst[i];
    rows.push([x, y, 1, 0, 0, 0, -x * u, -y * u, u]);
    rows.push([0, 0, 0, x, y, 1, -x * v, -y * v, v]);
  }
  const n = 8;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(rows[r][col]) > Math.abs(rows[pivot][col])) pivot = r;
    if (Math.abs(rows[pivot][col]) < 1e-12) throw new Error("degenerate points: three lie on one line");
    [rows[col], rows[pivot]] = [rows[pivot], rows[col]];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const factor = rows[r][col] / rows[col][col];
      for (let c = col; c <= n; c++) rows[r][c] -= factor * rows[col][c];
    }
  }
  const h = rows.map((row, i) => row[n] / row[i]);
  return [[h[0], h[1], h[2]], [h[3], h[4], h[5]], [h[6], h[7], 1]];
}

// The image of a point under a homography.
export function applyH(m, [x, y]) {
  const w = m[2][0] * x + m[2][1] * y + m[2][2];
  return [(m[0][0] * x + m[0][1] * y + m[0][2]) / w, (m[1][0] * x + m[1][1] * y + m[1][2]) / w];
}

// The inverse homography (the adjugate, normalised).
export function invert(m) {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const adj = [
    [e * i - f * h, c * h - b * i, b * f - c * e],
    [f * g - d * i, a * i - c * g, c * d - a * f],
    [d * h - e * g, b * g - a * h, a * e - b * d],
  ];
  const s = Math.abs(adj[2][2]) > 1e-12 ? adj[2][2] : 1;
  return adj.map((row) => row.map((v) => v / s));
}

// The signal multiplier at x (0 at the output's edge, 1 where the blend zone ends).
// Light ramp: Paul Bourke's edge-blend curve, p = 2:
//   f(x) = 0.5 (2x)^2 for x < 0.5,  1 - 0.5 (2 - 2x)^2 otherwise,
// so f(x) + f(1 - x) = 1: mirrored ramps of two overlapping projectors add up to
// the light of one. A display turns signal s into light s^gamma, so the signal
// multiplier is f(x)^(1/gamma).
export function blendRamp(x, gamma) {
  const t = Math.min(Math.max(x, 0), 1);
  const light = t < 0.5 ? 0.5 * (2 * t) ** 2 : 1 - 0.5 * (2 - 2 * t) ** 2;
  return light ** (1 / gamma);
}

const UNIT = [[0, 0], [1, 0], [1, 1], [0, 1]];

// A convex quad going round TL TR BR BL (as check_corners on the server): true if usable.
export function cornersOk(corners) {
  for (let i = 0; i < 4; i++) {
    const [o, a, b] = [corners[i], corners[(i + 1) % 4], corners[(i + 2) % 4]];
    if ((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]) <= 1e-6) return false;
  }
  return true;
}

// A mesh (rows of [x, y] points) whose every cell goes round TL TR BR BL (as check_mesh).
export function meshOk(mesh) {
  for (let r = 0; r + 1 < mesh.length; r++) {
    for (let c = 0; c + 1 < mesh[r].length; c++) {
      if (!cornersOk([mesh[r][c], mesh[r][c + 1], mesh[r + 1][c + 1], mesh[r + 1][c]])) return false;
    }
  }
  return true;
}

export const MESH_STEPS = 8; // each mesh cell is drawn as MESH_STEPS x MESH_STEPS small quads

// Each mesh point's homogeneous weight: w of the outer corners' homography there
// (plain bilinear, all 1, where no homography fits the outline).
function meshWeights(grid) {
  const rows = grid.length, cols = grid[0].length;
  let g;
  try { g = homography(UNIT, [grid[0][0], grid[0][cols - 1], grid[rows - 1][cols - 1], grid[rows - 1][0]]); } catch (_) { g = null; }
  const w = grid.map((row, r) => row.map((_, c) => (g ? g[2][0] * c / (cols - 1) + g[2][1] * r / (rows - 1) + g[2][2] : 1)));
  return w.flat().some((v) => v <= 1e-6) ? grid.map((row) => row.map(() => 1)) : w;
}

// The warp as pieces, each carried by its own homography, as pieces() in
// server/outputs/warp.py. A corner-pin is one piece. A mesh cell (r, c) covers the
// slice's [c/(cols-1), (c+1)/(cols-1)] x [r/(rows-1), (r+1)/(rows-1)] and is a
// perspective-correct bilinear patch of its four points p_i with weights w_i:
//   P(s, t) = sum_i b_i w_i p_i / sum_i b_i w_i,  b_i the cell's bilinear weights,
// continuous across cells and exact for a mesh laid through a corner-pin. Each cell
// is drawn as MESH_STEPS x MESH_STEPS small quads on the patch, each with its own
// homography. Each piece: { box: [s0, t0, s1, t1], quad, toSlice }.
export function meshCells(mapping) {
  if (!mapping.mesh || !mapping.mesh.length) {
    return [{ box: [0, 0, 1, 1], quad: mapping.corners, toSlice: invert(homography(UNIT, mapping.corners)) }];
  }
  const grid = mapping.mesh, weights = meshWeights(grid);
  const rows = grid.length, cols = grid[0].length, n = MESH_STEPS;
  const pieces = [];
  for (let r = 0; r + 1 < rows; r++) {
    for (let c = 0; c + 1 < cols; c++) {
      const pts = [grid[r][c], grid[r][c + 1], grid[r + 1][c + 1], grid[r + 1][c]];
      const ws = [weights[r][c], weights[r][c + 1], weights[r + 1][c + 1], weights[r + 1][c]];
      const patch = (a, b) => {
        const bs = [(1 - a) * (1 - b), a * (1 - b), a * b, (1 - a) * b];
        let w = 0, x = 0, y = 0;
        for (let i = 0; i < 4; i++) { w += bs[i] * ws[i]; x += bs[i] * ws[i] * pts[i][0]; y += bs[i] * ws[i] * pts[i][1]; }
        return [x / w, y / w];
      };
      const on = Array.from({ length: n + 1 }, (_, j) => Array.from({ length: n + 1 }, (_, i) => patch(i / n, j / n)));
      for (let j = 0; j < n; j++) {
        for (let i = 0; i < n; i++) {
          const [s0, s1] = [(c + i / n) / (cols - 1), (c + (i + 1) / n) / (cols - 1)];
          const [t0, t1] = [(r + j / n) / (rows - 1), (r + (j + 1) / n) / (rows - 1)];
          const quad = [on[j][i], on[j][i + 1], on[j + 1][i + 1], on[j + 1][i]];
          const box = [[s0, t0], [s1, t0], [s1, t1], [s0, t1]];
          pieces.push({ box: [s0, t0, s1, t1], quad, toSlice: invert(homography(box, quad)) });
        }
      }
    }
  }
  return pieces;
}

// The map from the output's frame back to its slice (0..1 each): a corner-pin's matrix.
export function frameToSlice(corners) {
  return invert(homography(UNIT, corners));
}

// The GLSL twin of blendRamp, for the projector's fragment shader.
export const BLEND_RAMP_GLSL = `
float blendRamp(float x, float gamma) {
  float t = clamp(x, 0.0, 1.0);
  float light = t < 0.5 ? 0.5 * (2.0 * t) * (2.0 * t) : 1.0 - 0.5 * (2.0 - 2.0 * t) * (2.0 - 2.0 * t);
  return pow(light, 1.0 / gamma);
}`;
