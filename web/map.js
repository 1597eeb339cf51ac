// /map: line up the projectors. Shows the canvas with each output's slice, and a
// picture of each output (the live slice, in its own shape) whose four corners (or
// mesh points) are dragged; every change goes out as
// the registry's /out/NAME/... commands over the websocket, so projector pages
// follow as you drag. Needs the performer's link (#t=...), as /control does.
import { negotiate, openSocket } from "/rtc.js";
import { whoAmI } from "/token.js";
import { cornersOk, meshOk } from "/mapping.js";

const COLOURS = ["#5aa0ff", "#ff7a59", "#62d26f", "#d98cff", "#ffd23f", "#4dd6d0"];
const outputs = new Map(); // name -> mapping
let ws = null;
const log = document.getElementById("log");
const rects = document.getElementById("rects");
const list = document.getElementById("outputs");
const testcard = document.getElementById("testcard");
window.ganvjMap = { outputs, sent: 0 }; // for tests

function send(address, args = []) {
  if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({ address, args })); window.ganvjMap.sent++; }
}

function defaults(name) {
  return { name, rect: [0, 0, 1, 1], corners: [[0, 0], [1, 0], [1, 1], [0, 1]], mesh: [], mask: [], blend: [0, 0, 0, 0], gamma: 2.2, brightness: 1, black: 0 };
}

function onState(address, args) {
  if (address === "/output/testcard") { testcard.checked = Boolean(args[0]); return; }
  const [, root, name, key] = address.split("/");
  if (root !== "out" || !name) return;
  if (key === "remove") { outputs.delete(name); render(); return; }
  if (key === "add") { if (!outputs.has(name)) { outputs.set(name, defaults(name)); render(); } return; }
  const m = outputs.get(name);
  if (!m) return;
  if (key === "rect" || key === "blend") m[key] = args.map(Number);
  else if (key === "mesh" && address.split("/").length === 5) {
    const n = Number(address.split("/")[4]) - 1, cols = m.mesh.length ? m.mesh[0].length : 1;
    if (m.mesh.length) m.mesh[Math.floor(n / cols)][n % cols] = args.map(Number);
  } else if (key === "mesh") {
    const [rows, cols] = args.map(Number);
    m.mesh = args.length < 2 ? [] : Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => [Number(args[2 + 2 * (r * cols + c)]), Number(args[3 + 2 * (r * cols + c)])]));
  } else if (key === "mask") {
    m.mask = Array.from({ length: Math.floor(args.length / 2) }, (_, i) => [Number(args[2 * i]), Number(args[2 * i + 1])]);
  } else if (key === "corners") m.corners = [0, 2, 4, 6].map((i) => [args[i], args[i + 1]]);
  else if (key in m) m[key] = Number(args[0]);
  update(name);
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
  list.replaceChildren();
  for (const name of outputs.keys()) list.appendChild(panel(name));
  update();
}

function update(only = null) {
  rects.replaceChildren();
  [...outputs.values()].forEach((m, i) => {
    const colour = COLOURS[i % COLOURS.length];
    el("rect", { x: m.rect[0], y: m.rect[1], width: m.rect[2], height: m.rect[3], stroke: colour }, rects);
    const label = el("text", { x: m.rect[0] + 0.015, y: m.rect[1] + 0.08, fill: colour }, rects);
    label.textContent = m.name;
    if (only === null || only === m.name) drawPanel(m);
  });
}

function panel(name) {
  const box = document.createElement("div");
  box.className = "output";
  box.id = `output-${name}`;
  box.innerHTML = `<h2>${name} <a href="/out/${name}" target="_blank">open</a> <button class="remove">remove</button></h2>
    <div class="view"><canvas class="slice"></canvas><svg viewBox="-0.1 -0.1 1.2 1.2"></svg></div>
    <div>rect ${["x", "y", "w", "h"].map((k, i) => `<label>${k} <input type="number" step="0.005" min="0" max="1" data-key="rect" data-i="${i}"></label>`).join("")}</div>
    <div>blend ${["l", "r", "t", "b"].map((k, i) => `<label>${k} <input type="number" step="0.01" min="0" max="1" data-key="blend" data-i="${i}"></label>`).join("")}</div>
    <div><label>gamma <input type="number" step="0.1" min="1" max="4" data-key="gamma"></label>
    <label>brightness <input type="number" step="0.05" min="0" max="2" data-key="brightness"></label>
    <label>black <input type="number" step="0.01" min="0" max="0.5" data-key="black"></label>
    <button class="reset">reset corners</button></div>
    <div>mesh <label>rows <input type="number" class="mesh-size" value="3" min="2" max="8"></label>
    <label>cols <input type="number" class="mesh-size" value="3" min="2" max="8"></label>
    <button class="mesh-on">lay a mesh</button> <button class="mesh-off">corners only</button></div>`;
  box.querySelector(".remove").addEventListener("click", () => send(`/out/${name}/remove`));
  box.querySelector(".reset").addEventListener("click", () => send(`/out/${name}/corners`, [0, 0, 1, 0, 1, 1, 0, 1]));
  box.querySelector(".mesh-on").addEventListener("click", () => {
    const [rows, cols] = [...box.querySelectorAll(".mesh-size")].map((i) => Number(i.value));
    send(`/out/${name}/mesh`, [rows, cols]);
  });
  box.querySelector(".mesh-off").addEventListener("click", () => send(`/out/${name}/mesh`));
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
  let dragging = -1;
  svg.addEventListener("pointerdown", (event) => {
    const target = event.target.closest(".handle");
    if (!target) return;
    dragging = Number(target.dataset.i);
    svg.setPointerCapture(event.pointerId);
  });
  svg.addEventListener("pointermove", (event) => {
    if (dragging < 0) return;
    const point = svg.createSVGPoint();
    point.x = event.clientX; point.y = event.clientY;
    const p = point.matrixTransform(svg.getScreenCTM().inverse());
    const m = outputs.get(name);
    const a = aspect(m);
    const at = [Math.min(2, Math.max(-1, p.x)), Math.min(2, Math.max(-1, p.y / a))];
    if (m.mesh && m.mesh.length) { // a mesh point: /out/NAME/mesh/N, N from 1 row by row
      const cols = m.mesh[0].length;
      const mesh = m.mesh.map((row) => row.map((q) => [...q]));
      mesh[Math.floor(dragging / cols)][dragging % cols] = at;
      if (!meshOk(mesh)) return; // the server would refuse a folded cell anyway
      m.mesh = mesh;
      drawPanel(m);
      send(`/out/${name}/mesh/${dragging + 1}`, at.map((v) => Number(v.toFixed(4))));
      return;
    }
    const corners = m.corners.map((c) => [...c]);
    corners[dragging] = at;
    if (!cornersOk(corners)) return; // the server would refuse a folded quad anyway
    m.corners = corners;
    drawPanel(m);
    send(`/out/${name}/corners`, corners.flat().map((v) => Number(v.toFixed(4))));
  });
  const stop = () => { dragging = -1; };
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointercancel", stop);
  return box;
}

// An output's frame is its slice's shape: height / width in canvas pixels (1 until
// the canvas's size is known from the stream).
function aspect(m) {
  const video = document.getElementById("video");
  const [W, H] = [video.videoWidth || 1, video.videoHeight || 1];
  return (m.rect[3] * H) / (m.rect[2] * W);
}

function drawPanel(m) {
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
  if (m.mask && m.mask.length) el("polygon", { class: "mask", points: m.mask.map(at).join(" ") }, svg);
  for (const input of box.querySelectorAll("input[data-key]")) {
    if (document.activeElement === input) continue;
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
    else if (msg.type === "error") log.textContent = `${msg.address || ""} ${msg.error}`;
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

// Each output's picture: the live canvas cut to its slice, filling its frame (the
// -0.1..1.1 view's 0..1 part), every animation frame while the stream plays.
let shapeKey = "";
function drawSlices() {
  requestAnimationFrame(drawSlices);
  const video = document.getElementById("video");
  if (video.readyState < 2 || !video.videoWidth) return;
  const [W, H] = [video.videoWidth, video.videoHeight];
  const key = `${W}x${H}`;
  if (key !== shapeKey) { shapeKey = key; update(); } // the slices' shapes are known now
  for (const m of outputs.values()) {
    const box = document.getElementById(`output-${m.name}`);
    const canvas = box && box.querySelector("canvas.slice");
    if (!canvas) continue;
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
