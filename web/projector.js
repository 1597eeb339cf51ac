// A projector output, /out/NAME: play the one shared stream, and cut, corner-pin
// and edge-blend this output's slice of it in WebGL. The server encodes once,
// however many projectors; each page does its own warp. The mapping comes over
// the same websocket as the stream (outputs/watch) and changes as the performer
// drags corners on /map.
import { connectedWithin, negotiate, openSocket, retryPause } from "/rtc.js";
import { screenControls } from "/screen.js";
import { applySetting, defaultMapping } from "/feedback.js";
import { Warp } from "/warp.js";

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
  mapping: null, testcard: false, cardVersion: 0, lastFrames: 0, lastTime: 0, fps: 0,
  // Draws with a picture in them (a video frame or the test card): the draws before
  // the first frame decodes show the black texture and do not count.
  drawn: 0,
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
  if (key === "add") { if (!state.mapping) state.mapping = defaultMapping(NAME); say(""); return; }
  if (state.mapping && applySetting(state.mapping, address, args)) state.cardVersion++;
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

// -- the warp (web/warp.js, shared with /map's preview) ------------------------

const warp = new Warp(screen);

function draw() {
  requestAnimationFrame(draw);
  const dpr = window.devicePixelRatio || 1;
  const width = Math.round(innerWidth * dpr), height = Math.round(innerHeight * dpr);
  if (screen.width !== width || screen.height !== height) { screen.width = width; screen.height = height; }
  const m = state.mapping;
  if (!m) { warp.clear(); return; }
  if (state.thaw) {
    state.thaw = false; state.frozen = false;
    fadeHeldPicture(); // the buffer still holds the last frame drawn
  }
  const options = { video, fresh: !state.frozen, testcard: state.testcard, cardVersion: state.cardVersion };
  const picture = state.testcard || (video.readyState >= 2 && video.videoWidth > 0);
  if (warp.draw(m, options) && picture) state.drawn += 1;
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
