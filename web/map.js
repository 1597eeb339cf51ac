// /map: line up the projectors. Shows the canvas with each output's slice, and a
// picture of each output (the live slice, in its own shape) whose four corners (or
// mesh points) and mask points are dragged; every change goes out as
// the registry's /out/NAME/... commands over the websocket, so projector pages
// follow as you drag. Each picture is either the flat slice (to edit against) or,
// "as projected", the output drawn by the projector page's own warp (web/warp.js).
// The server judges every change: one it refuses comes back as an error, shown
// here, and the page takes the server's last good value back. Needs the
// performer's link (#t=...), as /control does.
import { negotiate, openSocket } from "/rtc.js";
import { whoAmI } from "/token.js";
import { applySetting, defaultMapping } from "/feedback.js";
import { cornersOk, meshOk } from "/mapping.js";
import { MAX_MASK, Warp } from "/warp.js";

const COLOURS = ["#5aa0ff", "#ff7a59", "#62d26f", "#d98cff", "#ffd23f", "#4dd6d0"];
const outputs = new Map(); // name -> mapping
let ws = null;
const log = document.getElementById("log");
const rects = document.getElementById("rects");
const list = document.getElementById("outputs");
const testcard = document.getElementById("testcard");
const warps = new Map(); // name -> Warp of the output's "as projected" picture
const projected = new Set(); // outputs shown as projected (kept when the panels are rebuilt)
window.ganvjMap = { outputs, sent: 0, previews: 0 }; // for tests

function send(address, args = []) {
  if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({ address, args })); window.ganvjMap.sent++; }
}

// A drag sends at most one command per address every DRAG_SEND_MS, the latest
// position (the last always goes out): about the projectors' frame rate, and far
// under the server's websocket limit (limits.ws_messages_per_s).
const DRAG_SEND_MS = 33;
const dragSends = new Map(); // address -> { at: last sent (ms), args: waiting, or null }
function sendDrag(address, args) {
  const entry = dragSends.get(address) || { at: -Infinity, args: null };
  dragSends.set(address, entry);
  const wait = entry.at + DRAG_SEND_MS - performance.now();
  if (entry.args) { entry.args = args; return; } // a send is due: it takes these
  if (wait <= 0) { entry.at = performance.now(); send(address, args); return; }
  entry.args = args;
  setTimeout(() => { entry.at = performance.now(); send(address, entry.args); entry.args = null; }, wait);
}

// After an /error for one of an output's settings the page asks the server for
// that setting ("?"): the answer is the last good value the server kept, and it
// replaces what the page showed (the dragged handle, the typed number).
const SETTINGS = new Set(["rect", "corners", "mesh", "mask", "blend", "gamma", "brightness", "black"]);
const asked = new Set(); // addresses asked, until their answer (or their own error) comes
function snapBack(address) {
  const [, root, name, key] = (address || "").split("/");
  if (root !== "out" || !outputs.has(name) || !SETTINGS.has(key)) return;
  if (asked.has(address)) { asked.delete(address); return; } // the question itself failed
  asked.add(address);
  send(address, ["?"]);
}

function onState(address, args) {
  if (address === "/output/testcard") { testcard.checked = Boolean(args[0]); return; }
  const answer = asked.delete(address); // the server's value after a refusal: fields too
  const [, root, name, key] = address.split("/");
  if (root !== "out" || !name) return;
  if (key === "remove") { outputs.delete(name); render(); return; }
  if (key === "add") { if (!outputs.has(name)) { outputs.set(name, defaultMapping(name)); render(); } return; }
  const m = outputs.get(name);
  if (m && applySetting(m, address, args)) update(name, answer);
}

// -- drawing ---------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function render() {
  for (const warp of warps.values()) { // free their WebGL contexts (a page has few)
    const lose = warp.gl.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
  }
  warps.clear();
  list.replaceChildren();
  for (const name of outputs.keys()) list.appendChild(panel(name));
  update();
}

// The canvas's rectangles, and the panels (one, or all): `fields` rewrites the
// number fields even the one being typed in (the server's answer after a refusal).
function update(only = null, fields = false) {
  rects.replaceChildren();
  [...outputs.values()].forEach((m, i) => {
    const colour = COLOURS[i % COLOURS.length];
    el("rect", { x: m.rect[0], y: m.rect[1], width: m.rect[2], height: m.rect[3], stroke: colour }, rects);
    const label = el("text", { x: m.rect[0] + 0.015, y: m.rect[1] + 0.08, fill: colour }, rects);
    label.textContent = m.name;
    if (only === null || only === m.name) drawPanel(m, fields);
  });
}

function panel(name) {
  const box = document.createElement("div");
  box.className = "output";
  box.id = `output-${name}`;
  box.innerHTML = `<h2>${name} <a href="/out/${name}" target="_blank">open</a> <button class="remove">remove</button></h2>
    <div class="view"><canvas class="slice"></canvas><canvas class="warped" hidden></canvas><svg viewBox="-0.1 -0.1 1.2 1.2"></svg></div>
    <div><label><input type="checkbox" class="as-projected"> as projected</label></div>
    <div>rect ${["x", "y", "w", "h"].map((k, i) => `<label>${k} <input type="number" step="0.005" min="0" max="1" data-key="rect" data-i="${i}"></label>`).join("")}</div>
    <div>blend ${["l", "r", "t", "b"].map((k, i) => `<label>${k} <input type="number" step="0.01" min="0" max="1" data-key="blend" data-i="${i}"></label>`).join("")}</div>
    <div><label>gamma <input type="number" step="0.1" min="1" max="4" data-key="gamma"></label>
    <label>brightness <input type="number" step="0.05" min="0" max="2" data-key="brightness"></label>
    <label>black <input type="number" step="0.01" min="0" max="0.5" data-key="black"></label>
    <button class="reset">reset corners</button></div>
    <div>mesh <label>rows <input type="number" class="mesh-size" value="3" min="2" max="8"></label>
    <label>cols <input type="number" class="mesh-size" value="3" min="2" max="8"></label>
    <button class="mesh-on">lay a mesh</button> <button class="mesh-off">corners only</button></div>
    <div>mask <button class="mask-on">lay a mask</button> <button class="mask-point-off">remove point</button>
    <button class="mask-off">no mask</button>
    <small>double-tap near an edge adds a point; right-click (or select and "remove point") removes one</small></div>`;
  box.querySelector(".remove").addEventListener("click", () => send(`/out/${name}/remove`));
  box.querySelector(".reset").addEventListener("click", () => send(`/out/${name}/corners`, [0, 0, 1, 0, 1, 1, 0, 1]));
  box.querySelector(".mesh-on").addEventListener("click", () => {
    const [rows, cols] = [...box.querySelectorAll(".mesh-size")].map((i) => Number(i.value));
    send(`/out/${name}/mesh`, [rows, cols]);
  });
  box.querySelector(".mesh-off").addEventListener("click", () => send(`/out/${name}/mesh`));
  const toggle = box.querySelector("input.as-projected");
  const showProjected = (on) => {
    toggle.checked = on;
    if (on) projected.add(name); else projected.delete(name);
    box.classList.toggle("as-projected", on);
    box.querySelector("canvas.warped").hidden = !on;
    box.querySelector("canvas.slice").hidden = on;
  };
  toggle.addEventListener("change", () => showProjected(toggle.checked));
  showProjected(projected.has(name));
  // A mask starts as a rectangle inside the frame, clear of the corner handles.
  box.querySelector(".mask-on").addEventListener("click", () => send(`/out/${name}/mask`, [0.1, 0.1, 0.9, 0.1, 0.9, 0.9, 0.1, 0.9]));
  box.querySelector(".mask-off").addEventListener("click", () => send(`/out/${name}/mask`));
  box.querySelector(".mask-point-off").addEventListener("click", () => {
    if (selected < 0) { log.textContent = "tap a mask point first"; return; }
    removeMaskPoint(name, selected);
  });
  box.querySelectorAll("input[data-key]").forEach((input) => input.addEventListener("change", () => {
    const m = outputs.get(name);
    const key = input.dataset.key;
    if (key === "rect" || key === "blend") {
      const values = [...m[key]];
      values[Number(input.dataset.i)] = Number(input.value);
      send(`/out/${name}/${key}`, values);
    } else send(`/out/${name}/${key}`, [Number(input.value)]);
  }));
  const svg = box.querySelector("svg");
  // What is held: { kind: "point" (corner or mesh point) or "mask", i, refused }.
  // `refused`: the last move that would fold the quad or a mesh cell; it is kept
  // from the projectors while dragging, and sent on release so that the server says why.
  let drag = null;
  let selected = -1; // the selected mask point, for "remove point"
  let lastTap = null; // the last pointerdown on the picture, to tell a double tap
  let pointerType = "mouse"; // of the last pointerdown: a finger's long press is no right-click
  const frameAt = (event) => {
    const point = svg.createSVGPoint();
    point.x = event.clientX; point.y = event.clientY;
    const p = point.matrixTransform(svg.getScreenCTM().inverse());
    return [Math.min(2, Math.max(-1, p.x)), Math.min(2, Math.max(-1, p.y / aspect(outputs.get(name))))];
  };
  svg.addEventListener("pointerdown", (event) => {
    pointerType = event.pointerType;
    if (event.button === 2) return; // a right-click: the context menu handler
    const handle = event.target.closest(".handle, .mask-handle");
    if (handle) {
      const kind = handle.classList.contains("mask-handle") ? "mask" : "point";
      drag = { kind, i: Number(handle.dataset.i), refused: null };
      if (kind === "mask") { selected = drag.i; drawPanel(outputs.get(name)); }
      svg.setPointerCapture(event.pointerId);
      return;
    }
    const now = performance.now();
    const near = lastTap && Math.hypot(event.clientX - lastTap.x, event.clientY - lastTap.y) < DOUBLE_TAP_PX;
    if (near && now - lastTap.at < DOUBLE_TAP_MS) { addMaskPoint(name, frameAt(event)); lastTap = null; }
    else lastTap = { at: now, x: event.clientX, y: event.clientY };
  });
  svg.addEventListener("contextmenu", (event) => {
    const handle = event.target.closest(".mask-handle");
    if (!handle) return;
    event.preventDefault();
    // A phone sends this for a long press, which may be the start of a slow drag:
    // there a point goes only with "remove point".
    if (pointerType === "mouse") removeMaskPoint(name, Number(handle.dataset.i));
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const at = frameAt(event);
    const m = outputs.get(name);
    const rounded = (points) => points.flat().map((v) => Number(v.toFixed(4)));
    if (drag.kind === "mask") { // /out/NAME/mask with every point; any polygon is a mask
      if (drag.i >= m.mask.length) return;
      m.mask = m.mask.map((q, i) => (i === drag.i ? at : [...q]));
      drawPanel(m);
      sendDrag(`/out/${name}/mask`, rounded(m.mask));
      return;
    }
    if (m.mesh && m.mesh.length) { // a mesh point: /out/NAME/mesh/N, N from 1 row by row
      const cols = m.mesh[0].length;
      const mesh = m.mesh.map((row) => row.map((q) => [...q]));
      mesh[Math.floor(drag.i / cols)][drag.i % cols] = at;
      const address = `/out/${name}/mesh/${drag.i + 1}`;
      if (!meshOk(mesh)) { drag.refused = [address, rounded([at])]; return; }
      drag.refused = null;
      m.mesh = mesh;
      drawPanel(m);
      sendDrag(address, rounded([at]));
      return;
    }
    const corners = m.corners.map((c) => [...c]);
    corners[drag.i] = at;
    const address = `/out/${name}/corners`;
    if (!cornersOk(corners)) { drag.refused = [address, rounded(corners)]; return; }
    drag.refused = null;
    m.corners = corners;
    drawPanel(m);
    sendDrag(address, rounded(corners));
  });
  const stop = () => {
    if (drag && drag.refused) sendDrag(...drag.refused);
    drag = null;
  };
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointercancel", stop);
  box.selectedMaskPoint = () => selected;
  return box;
}

// Two taps on the picture within DOUBLE_TAP_MS and DOUBLE_TAP_PX of each other (a
// mouse's double-click, or a finger's double tap) add a mask point there.
const DOUBLE_TAP_MS = 500; // the usual double-click time of desktops
const DOUBLE_TAP_PX = 24;

// A new mask point at `at`, put into the mask's edge nearest to it (distances as
// drawn: y times the aspect). The server keeps 3..MAX_MASK points.
function addMaskPoint(name, at) {
  const m = outputs.get(name);
  if (!m.mask || !m.mask.length) { log.textContent = `${name}: lay a mask first, then double-tap its edges`; return; }
  if (m.mask.length >= MAX_MASK) { log.textContent = `${name}: a mask has at most ${MAX_MASK} points`; return; }
  const a = aspect(m);
  const [px, py] = [at[0], at[1] * a];
  let best = 0, bestDistance = Infinity;
  m.mask.forEach((p, i) => {
    const q = m.mask[(i + 1) % m.mask.length];
    const [ax, ay, bx, by] = [p[0], p[1] * a, q[0], q[1] * a];
    const [dx, dy] = [bx - ax, by - ay];
    const k = Math.min(1, Math.max(0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy || 1)));
    const distance = Math.hypot(px - ax - k * dx, py - ay - k * dy);
    if (distance < bestDistance) { best = i; bestDistance = distance; }
  });
  const mask = [...m.mask.slice(0, best + 1), at, ...m.mask.slice(best + 1)];
  send(`/out/${name}/mask`, mask.flat().map((v) => Number(v.toFixed(4))));
}

// Mask point i taken out; fewer than 3 is the server's to refuse (an /error, shown).
function removeMaskPoint(name, i) {
  const m = outputs.get(name);
  if (!m.mask || i >= m.mask.length) return;
  send(`/out/${name}/mask`, m.mask.filter((_, j) => j !== i).flat());
}

// An output's frame is its slice's shape: height / width in canvas pixels (1 until
// the canvas's size is known from the stream).
function aspect(m) {
  const video = document.getElementById("video");
  const [W, H] = [video.videoWidth || 1, video.videoHeight || 1];
  return (m.rect[3] * H) / (m.rect[2] * W);
}

function drawPanel(m, fields = false) {
  const box = document.getElementById(`output-${m.name}`);
  if (!box) return;
  const svg = box.querySelector("svg");
  const a = aspect(m);
  // The frame spans x -0.1..1.1 and y -0.1..1.1 of its own size: y is drawn times the
  // aspect, so the picture has the slice's shape and the handles stay round.
  svg.setAttribute("viewBox", `-0.1 ${-0.1 * a} 1.2 ${1.2 * a}`);
  box.querySelector(".view").style.aspectRatio = `1 / ${a}`;
  box.dataset.aspect = a.toFixed(4);
  const at = (p) => `${p[0]},${p[1] * a}`;
  svg.replaceChildren();
  el("rect", { x: 0, y: 0, width: 1, height: a, fill: "none", stroke: "#666", "stroke-width": 0.004 }, svg);
  if (m.mesh && m.mesh.length) { // the mesh's lines, and a handle on every point
    const rows = m.mesh, cols = rows[0].map((_, c) => rows.map((row) => row[c]));
    for (const line of [...rows, ...cols]) el("polyline", { class: "quad", points: line.map(at).join(" ") }, svg);
    rows.flat().forEach((p, i) => el("circle", { class: "handle", cx: p[0], cy: p[1] * a, r: 0.025, "data-i": i }, svg));
  } else {
    el("polygon", { class: "quad", points: m.corners.map(at).join(" ") }, svg);
    m.corners.forEach((p, i) => el("circle", { class: "handle", cx: p[0], cy: p[1] * a, r: 0.035, "data-i": i }, svg));
  }
  if (m.mask && m.mask.length) { // its outline, and a handle on every point (the selected one marked)
    el("polygon", { class: "mask", points: m.mask.map(at).join(" ") }, svg);
    const selected = box.selectedMaskPoint ? box.selectedMaskPoint() : -1;
    m.mask.forEach((p, i) => el("circle", { class: `mask-handle${i === selected ? " selected" : ""}`, cx: p[0], cy: p[1] * a, r: 0.025, "data-i": i }, svg));
  }
  for (const input of box.querySelectorAll("input[data-key]")) {
    if (document.activeElement === input && !fields) continue;
    const value = input.dataset.i !== undefined ? m[input.dataset.key][Number(input.dataset.i)] : m[input.dataset.key];
    input.value = Number(value).toFixed(3);
  }
}

// -- the connection ------------------------------------------------------------------

async function connect() {
  ws = await openSocket(true);
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "outputs") {
      outputs.clear();
      for (const [name, m] of Object.entries(msg.outputs)) outputs.set(name, m);
      testcard.checked = Boolean(msg.testcard);
      render();
    } else if (msg.type === "state") onState(msg.address, msg.args);
    else if (msg.type === "error") {
      log.textContent = `${msg.address || ""} ${msg.error}`;
      snapBack(msg.address);
    }
  });
  ws.send(JSON.stringify({ type: "outputs/watch" }));
  // The canvas itself, to see what each slice cuts.
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    const video = document.getElementById("video");
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
  });
  negotiate(pc, ws).catch((err) => { log.textContent = `no picture: ${err.message}`; });
  await new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
  pc.close();
}

// Each output's picture, every animation frame while the stream plays: flat, the
// live canvas cut to its slice, filling its frame (the -0.1..1.1 view's 0..1 part);
// or as projected, the projector page's warp drawn into that same 0..1 part.
let shapeKey = "";
function drawSlices() {
  requestAnimationFrame(drawSlices);
  const video = document.getElementById("video");
  if (video.readyState < 2 || !video.videoWidth) return;
  const [W, H] = [video.videoWidth, video.videoHeight];
  const key = `${W}x${H}`;
  if (key !== shapeKey) { shapeKey = key; update(); } // the slices' shapes are known now
  const dpr = window.devicePixelRatio || 1;
  for (const m of outputs.values()) {
    const box = document.getElementById(`output-${m.name}`);
    if (!box) continue;
    if (box.classList.contains("as-projected")) {
      const canvas = box.querySelector("canvas.warped");
      const [cw, ch] = [Math.round(canvas.clientWidth * dpr), Math.round(canvas.clientHeight * dpr)];
      if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
      if (!warps.has(m.name)) warps.set(m.name, new Warp(canvas));
      // The card depends on the mapping (its edges and blend zones): redraw it when that changes.
      const options = { video, testcard: testcard.checked, cardVersion: JSON.stringify(m) };
      if (warps.get(m.name).draw(m, options)) window.ganvjMap.previews++;
      continue;
    }
    const canvas = box.querySelector("canvas.slice");
    const [cw, ch] = [canvas.clientWidth, canvas.clientHeight];
    if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, cw, ch);
    const [x, y, w, h] = m.rect;
    ctx.drawImage(video, x * W, y * H, w * W, h * H, cw / 12, ch / 12, cw / 1.2, ch / 1.2);
  }
  window.ganvjMap.drawn = (window.ganvjMap.drawn || 0) + 1;
}
requestAnimationFrame(drawSlices);

testcard.addEventListener("change", () => send("/output/testcard", [testcard.checked ? 1 : 0]));
document.getElementById("add").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("new-name");
  send(`/out/${input.value}/add`);
  input.value = "";
});

(async () => {
  const me = await whoAmI();
  document.getElementById("role").textContent = me.role ? `role: ${me.role}` : "";
  if (me.role !== "performer" && me.role !== "admin") {
    log.textContent = "this page needs the performer's link (the control link with #t=...)";
    return;
  }
  for (;;) {
    try { await connect(); } catch (err) { log.textContent = err.message; }
    await new Promise((r) => setTimeout(r, 1000));
  }
})();
