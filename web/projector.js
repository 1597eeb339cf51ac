// A projector output, /out/NAME: play the one shared stream, and cut, corner-pin
// and edge-blend this output's slice of it in WebGL. The server encodes once,
// however many projectors; each page does its own warp. The mapping comes over
// the same websocket as the stream (outputs/watch) and changes as the performer
// drags corners on /map.
import { connectedWithin, negotiate, openSocket, retryPause } from "/rtc.js";
import { screenControls } from "/screen.js";
import { BLEND_RAMP_GLSL, meshCells } from "/mapping.js";
import { drawTestcard } from "/testcard.js";

const NAME = decodeURIComponent(location.pathname.split("/")[2] || "");
const screen = document.getElementById("screen");
const video = document.getElementById("video");
const statusBox = document.getElementById("status");
const hint = document.getElementById("hint");
const problem = document.getElementById("problem");
const hold = document.getElementById("hold");
// As on / (viewer.js): a try stuck in ICE for ATTEMPT_SECONDS is made again, quietly;
// a video away for CONNECT_SECONDS is said on screen.
const CONNECT_SECONDS = Number(new URLSearchParams(location.search).get("wait")) || 15;
const ATTEMPT_SECONDS = Math.min(4, CONNECT_SECONDS);

const state = {
  name: NAME, pc: null, ws: null, connected: false, retries: 0, lostAt: performance.now(),
  mapping: null, testcard: false, drawn: 0, cardVersion: 0, lastFrames: 0, lastTime: 0, fps: 0,
  // While the server is away the warp keeps drawing the last frame it had (the
  // texture is not updated): a projector never goes black. `thaw`: the new
  // stream's first frame is here; the held picture fades out over it.
  frozen: false, thaw: false,
};
window.ganvj = state; // for tests and curious stage techs

function say(text) {
  problem.textContent = text;
  problem.hidden = !text;
}

// -- the mapping, from the server ---------------------------------------------

function applyState(address, args) {
  if (address === "/output/testcard") { state.testcard = Boolean(args[0]); state.cardVersion++; return; }
  const parts = address.split("/"); // ["", "out", NAME, key] or [..., "mesh", N]
  if (parts[1] !== "out" || parts[2] !== NAME) return;
  const key = parts[3];
  if (key === "remove") { state.mapping = null; say(`output ${NAME} was removed`); return; }
  if (key === "add") { if (!state.mapping) state.mapping = defaults(); say(""); return; }
  if (!state.mapping) return;
  const m = state.mapping;
  if (key === "rect" || key === "blend") m[key] = args.map(Number);
  else if (key === "mesh" && parts.length === 5) movePoint(m, Number(parts[4]), args);
  else if (key === "mesh") m.mesh = meshFrom(args);
  else if (key === "mask") m.mask = Array.from({ length: Math.floor(args.length / 2) }, (_, i) => [Number(args[2 * i]), Number(args[2 * i + 1])]);
  else if (key === "corners") m.corners = [0, 2, 4, 6].map((i) => [Number(args[i]), Number(args[i + 1])]);
  else if (key === "gamma" || key === "brightness" || key === "black") m[key] = Number(args[0]);
  state.cardVersion++;
}

// "/out/NAME/mesh rows cols x y ...": rows of points; no numbers is no mesh.
function meshFrom(args) {
  if (args.length < 2) return [];
  const [rows, cols] = [Number(args[0]), Number(args[1])];
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => {
    const i = 2 + 2 * (r * cols + c);
    return [Number(args[i]), Number(args[i + 1])];
  }));
}

// "/out/NAME/mesh/N x y": point N (1 is top left, row by row).
function movePoint(m, n, args) {
  if (!m.mesh || !m.mesh.length) return;
  const cols = m.mesh[0].length;
  const [r, c] = [Math.floor((n - 1) / cols), (n - 1) % cols];
  if (r < m.mesh.length) m.mesh[r][c] = [Number(args[0]), Number(args[1])];
}

function defaults() {
  return { name: NAME, rect: [0, 0, 1, 1], corners: [[0, 0], [1, 0], [1, 1], [0, 1]], mesh: [], mask: [], blend: [0, 0, 0, 0], gamma: 2.2, brightness: 1, black: 0 };
}

function onMessage(event) {
  const msg = JSON.parse(event.data);
  if (msg.type === "outputs") {
    state.mapping = msg.outputs[NAME] || null;
    state.testcard = Boolean(msg.testcard);
    state.cardVersion++;
    if (!state.mapping) say(`no output named ${NAME}`);
  } else if (msg.type === "state") {
    applyState(msg.address, msg.args);
  }
}

// -- the stream ----------------------------------------------------------------

class MediaFailed extends Error {}

async function connect() {
  const ws = await openSocket();
  const pc = new RTCPeerConnection({ iceServers: [] });
  state.ws = ws; state.pc = pc;
  ws.addEventListener("message", onMessage);
  ws.send(JSON.stringify({ type: "outputs/watch" }));
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = 0;
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
    const fresh = () => { if (state.frozen) state.thaw = true; };
    if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(fresh);
    else video.addEventListener("playing", fresh, { once: true });
  });
  const lost = new Promise((resolve, reject) => {
    ws.addEventListener("close", resolve, { once: true });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") reject(new MediaFailed("no network path to the server's video"));
      else if (pc.connectionState === "closed") resolve();
      else if (pc.connectionState === "connected") { state.connected = true; state.retries = 0; say(""); }
    });
  });
  lost.catch(() => {}); // raced below
  await negotiate(pc, ws);
  const stuck = connectedWithin(pc, ATTEMPT_SECONDS, (why) => new MediaFailed(why));
  await Promise.race([lost, stuck]);
}

async function run() {
  for (;;) {
    let failure = null;
    try {
      await connect();
    } catch (err) {
      failure = err;
    }
    if (state.connected) state.lostAt = performance.now();
    state.connected = false;
    if (state.drawn > 0) state.frozen = true; // hold the last frame
    if (failure) {
      console.warn("ganvj:", failure.message);
      const away = (performance.now() - state.lostAt) / 1000;
      if (failure instanceof MediaFailed && away >= CONNECT_SECONDS) {
        say(`cannot reach the server's video: check that UDP is open (${failure.message}; retrying)`);
      }
    }
    try { state.pc && state.pc.close(); } catch (_) {}
    try { state.ws && state.ws.close(); } catch (_) {}
    state.retries += 1;
    await retryPause(state.retries);
  }
}

// The held picture (the warp's last drawing) over the canvas, fading out as the
// new stream plays under it. Called right after a draw, while its buffer is valid.
function fadeHeldPicture() {
  if (hold.width !== screen.width || hold.height !== screen.height) {
    hold.width = screen.width; hold.height = screen.height;
  }
  hold.getContext("2d").drawImage(screen, 0, 0);
  hold.classList.remove("fading");
  hold.hidden = false;
  requestAnimationFrame(() => requestAnimationFrame(() => hold.classList.add("fading")));
  setTimeout(() => { if (hold.classList.contains("fading")) hold.hidden = true; }, 900);
}

// -- WebGL: the warp -------------------------------------------------------------

const MAX_MASK = 16; // points of a mask polygon, as MAX_MASK_POINTS in server/commands.py

// The warp is drawn as geometry: each cell of the mesh (a corner-pin is one cell)
// is a quad of two triangles at its four points on the output's frame, and carries
// its own frame -> slice homography (the same on all six vertices, so the varyings
// are that constant). Outside every cell nothing is drawn: black.
const VERTEX = `
attribute vec2 aFrame;          // the vertex on the output's frame, 0..1, y down
attribute vec3 aH0, aH1, aH2;   // its cell's frame -> slice homography, by rows
varying vec2 vFrame;
varying vec3 vH0, vH1, vH2;
void main() {
  vFrame = aFrame; vH0 = aH0; vH1 = aH1; vH2 = aH2;
  gl_Position = vec4(aFrame.x * 2.0 - 1.0, 1.0 - aFrame.y * 2.0, 0.0, 1.0);
}`;

// Each pixel of a cell goes back through the cell's homography to a point s of the
// slice, s = (H0.p, H1.p) / H2.p with p = (x, y, 1). The slice point picks the canvas
// pixel (or the test card's), then the soft edges, brightness and black lift.
const FRAGMENT = `
precision highp float;
varying vec2 vFrame;
varying vec3 vH0, vH1, vH2;
uniform vec4 uRect, uBlend; // slice on the canvas; blend widths l r t b
uniform float uGamma, uBrightness, uBlack;
uniform bool uCard;
uniform sampler2D uVideo, uCardTex;
uniform vec2 uMask[${MAX_MASK}]; // the mask polygon on the frame; uMaskCount 0: no mask
uniform int uMaskCount;
${BLEND_RAMP_GLSL}
// Even-odd rule: a ray from q towards +x crosses edge (a, b) when the edge spans q.y
// and the crossing x = a.x + (q.y - a.y)(b.x - a.x)/(b.y - a.y) lies right of q;
// an odd count is inside. The same test as in_polygon in server/outputs/warp.py.
bool crosses(vec2 a, vec2 b, vec2 q) {
  return (a.y > q.y) != (b.y > q.y) && q.x < a.x + (q.y - a.y) * (b.x - a.x) / (b.y - a.y);
}
bool inMask(vec2 q) {
  bool inside = false;
  vec2 a = uMask[0];
  for (int i = 1; i < ${MAX_MASK}; i++) {
    if (i >= uMaskCount) break;
    if (crosses(a, uMask[i], q)) inside = !inside;
    a = uMask[i];
  }
  if (crosses(a, uMask[0], q)) inside = !inside; // the closing edge, last point to first
  return inside;
}
void main() {
  if (uMaskCount > 0 && !inMask(vFrame)) { gl_FragColor = vec4(0.0, 0.0, 0.0, 1.0); return; }
  vec3 p = vec3(vFrame, 1.0);
  vec2 s = clamp(vec2(dot(vH0, p), dot(vH1, p)) / dot(vH2, p), 0.0, 1.0);
  vec3 colour = uCard ? texture2D(uCardTex, s).rgb : texture2D(uVideo, uRect.xy + s * uRect.zw).rgb;
  float weight = 1.0;
  bool zone = false;
  if (uBlend.x > 0.0) { weight *= blendRamp(s.x / uBlend.x, uGamma); zone = zone || s.x < uBlend.x; }
  if (uBlend.y > 0.0) { weight *= blendRamp((1.0 - s.x) / uBlend.y, uGamma); zone = zone || 1.0 - s.x < uBlend.y; }
  if (uBlend.z > 0.0) { weight *= blendRamp(s.y / uBlend.z, uGamma); zone = zone || s.y < uBlend.z; }
  if (uBlend.w > 0.0) { weight *= blendRamp((1.0 - s.y) / uBlend.w, uGamma); zone = zone || 1.0 - s.y < uBlend.w; }
  gl_FragColor = vec4(colour * weight * uBrightness + (zone ? 0.0 : uBlack), 1.0);
}`;

const gl = screen.getContext("webgl", { antialias: false, preserveDrawingBuffer: true });
const program = link(gl, VERTEX, FRAGMENT);
const uniform = (name) => gl.getUniformLocation(program, name);
gl.useProgram(program);
const buffer = gl.createBuffer();
gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
const STRIDE = 11; // floats per vertex: frame x y, then the cell's homography's three rows
[["aFrame", 2, 0], ["aH0", 3, 2], ["aH1", 3, 5], ["aH2", 3, 8]].forEach(([name, size, offset]) => {
  const at = gl.getAttribLocation(program, name);
  gl.enableVertexAttribArray(at);
  gl.vertexAttribPointer(at, size, gl.FLOAT, false, STRIDE * 4, offset * 4);
});
let geometryKey = "";
let vertexCount = 0;

// The cells' triangles (TL TR BR, TL BR BL), rebuilt only when the warp changes.
function geometry(m) {
  const key = JSON.stringify([m.corners, m.mesh]);
  if (key === geometryKey) return;
  const data = [];
  for (const cell of meshCells(m)) {
    const h = cell.toSlice.flat();
    for (const i of [0, 1, 2, 0, 2, 3]) data.push(...cell.quad[i], ...h);
  }
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(data), gl.DYNAMIC_DRAW);
  vertexCount = data.length / STRIDE;
  geometryKey = key;
}
const videoTex = texture(gl, 0);
const cardTex = texture(gl, 1);
gl.uniform1i(uniform("uVideo"), 0);
gl.uniform1i(uniform("uCardTex"), 1);
const card = document.createElement("canvas");
let cardDrawn = "";

function link(gl, vs, fs) {
  const prog = gl.createProgram();
  for (const [type, source] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    gl.attachShader(prog, shader);
  }
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
  return prog;
}

function texture(gl, unit) {
  const tex = gl.createTexture();
  gl.activeTexture(gl.TEXTURE0 + unit);
  gl.bindTexture(gl.TEXTURE_2D, tex);
  // Any size (no mipmaps, clamped): the canvas is W x H, not a power of two.
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
  gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, 1, 1, 0, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array([0, 0, 0, 255]));
  return tex;
}

function draw() {
  requestAnimationFrame(draw);
  const dpr = window.devicePixelRatio || 1;
  const width = Math.round(innerWidth * dpr), height = Math.round(innerHeight * dpr);
  if (screen.width !== width || screen.height !== height) { screen.width = width; screen.height = height; }
  gl.viewport(0, 0, width, height);
  const m = state.mapping;
  if (!m) { gl.clearColor(0, 0, 0, 1); gl.clear(gl.COLOR_BUFFER_BIT); return; }
  if (state.thaw) {
    state.thaw = false; state.frozen = false;
    fadeHeldPicture(); // the buffer still holds the last frame drawn
  }
  if (!state.frozen && video.readyState >= 2 && video.videoWidth > 0) {
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, videoTex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, video);
  }
  const cardKey = `${state.cardVersion} ${video.videoWidth}x${video.videoHeight} ${width}x${height}`;
  if (state.testcard && cardDrawn !== cardKey) {
    drawTestcard(card, m, [video.videoWidth || 1, video.videoHeight || 1], [width, height]);
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D, cardTex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, card);
    cardDrawn = cardKey;
  }
  try { geometry(m); } catch (_) { return; }
  gl.uniform4fv(uniform("uRect"), m.rect);
  gl.uniform4fv(uniform("uBlend"), m.blend);
  gl.uniform1f(uniform("uGamma"), m.gamma);
  gl.uniform1f(uniform("uBrightness"), m.brightness);
  gl.uniform1f(uniform("uBlack"), m.black);
  gl.uniform1i(uniform("uCard"), state.testcard ? 1 : 0);
  const mask = (m.mask || []).slice(0, MAX_MASK);
  gl.uniform1i(uniform("uMaskCount"), mask.length);
  if (mask.length) gl.uniform2fv(uniform("uMask"), new Float32Array([...mask.flat(), ...new Array(2 * (MAX_MASK - mask.length)).fill(0)]));
  gl.clearColor(0, 0, 0, 1);
  gl.clear(gl.COLOR_BUFFER_BIT);
  gl.drawArrays(gl.TRIANGLES, 0, vertexCount);
  state.drawn += 1;
}

// -- the status overlay and full screen, as on / --------------------------------

async function updateStatus() {
  if (statusBox.hidden) return;
  const lines = [`output ${NAME}`];
  const m = state.mapping;
  if (m) {
    lines.push(`rect ${m.rect.map((v) => v.toFixed(3)).join(" ")}`);
    lines.push(`corners ${m.corners.map((p) => p.map((v) => v.toFixed(3)).join(",")).join("  ")}`);
    if (m.mesh && m.mesh.length) lines.push(`mesh ${m.mesh.length} x ${m.mesh[0].length} points`);
    if (m.mask && m.mask.length) lines.push(`mask ${m.mask.length} points`);
    lines.push(`blend ${m.blend.join(" ")}  gamma ${m.gamma}  brightness ${m.brightness}${state.testcard ? "  TEST CARD" : ""}`);
  }
  if (state.pc) {
    (await state.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        if (state.lastTime) state.fps = ((s.framesDecoded - state.lastFrames) * 1000) / (s.timestamp - state.lastTime);
        state.lastFrames = s.framesDecoded; state.lastTime = s.timestamp;
        lines.push(`decoded ${s.framesDecoded}  ${state.fps.toFixed(1)} fps  canvas ${s.frameWidth}x${s.frameHeight}  lost ${s.packetsLost}`);
      }
    });
  }
  try {
    const server = await (await fetch("/api/status")).json();
    lines.push(`server ${server.rendered_fps} fps rendered, ${server.sent_fps} sent, ${server.viewers} viewers`);
  } catch (_) {
    lines.push("server unreachable");
  }
  lines.push(state.connected ? "connected" : `reconnecting (try ${state.retries})`);
  statusBox.textContent = lines.join("\n");
}

screenControls(statusBox, updateStatus);
setTimeout(() => hint.classList.add("gone"), 3000);
setInterval(updateStatus, 1000);
requestAnimationFrame(draw);
run();
