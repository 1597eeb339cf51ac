// An output's feedback applied to a page's copy of its mapping: "/out/NAME/KEY args",
// as the server sends it after every change and in answer to "?". The projector
// page (/out/NAME) and /map keep their copies with it, so both read it one way.

// A new output's mapping: server/outputs/mapping.py's OutputMapping defaults.
export function defaultMapping(name) {
  return { name, rect: [0, 0, 1, 1], corners: [[0, 0], [1, 0], [1, 1], [0, 1]], mesh: [], mask: [], blend: [0, 0, 0, 0], gamma: 2.2, brightness: 1, black: 0, ndi: false };
}

// Set what `address` ("/out/NAME/KEY" or "/out/NAME/mesh/N") says in mapping `m`;
// false when it names no setting (add, remove, another root).
export function applySetting(m, address, args) {
  const parts = address.split("/"); // ["", "out", NAME, key] or [..., "mesh", N]
  const key = parts[3];
  if (parts[1] !== "out") return false;
  if (key === "rect" || key === "blend") m[key] = args.map(Number);
  else if (key === "mesh" && parts.length === 5) movePoint(m, Number(parts[4]), args);
  else if (key === "mesh") m.mesh = meshFrom(args);
  else if (key === "mask") m.mask = pointsFrom(args);
  else if (key === "corners") m.corners = pointsFrom(args.slice(0, 8));
  else if (key === "gamma" || key === "brightness" || key === "black") m[key] = Number(args[0]);
  else if (key === "ndi") m.ndi = Boolean(args[0]);
  else return false;
  return true;
}

// "x1 y1 x2 y2 ...": [[x1, y1], [x2, y2], ...].
function pointsFrom(args) {
  return Array.from({ length: Math.floor(args.length / 2) }, (_, i) => [Number(args[2 * i]), Number(args[2 * i + 1])]);
}

// "/out/NAME/mesh rows cols x y ...": rows of points; no numbers is no mesh.
function meshFrom(args) {
  if (args.length < 2) return [];
  const [rows, cols] = [Number(args[0]), Number(args[1])];
  const points = pointsFrom(args.slice(2));
  return Array.from({ length: rows }, (_, r) => points.slice(r * cols, (r + 1) * cols));
}

// "/out/NAME/mesh/N x y": point N (1 is top left, row by row).
function movePoint(m, n, args) {
  if (!m.mesh || !m.mesh.length) return;
  const cols = m.mesh[0].length;
  const [r, c] = [Math.floor((n - 1) / cols), (n - 1) % cols];
  if (r < m.mesh.length) m.mesh[r][c] = [Number(args[0]), Number(args[1])];
}
