// The fullscreen viewer: receive the stream, play it with minimal latency,
// reconnect by itself after a server restart. No controls over the picture.
// While the server is away (a worker restarting) the last frame stays on
// screen, held on a canvas over the video, and fades out once frames flow again:
// a projector never shows black or a browser error.
import { connectedWithin, negotiate, openSocket, retryPause } from "/rtc.js";
import { screenControls } from "/screen.js";
import { watchJanus } from "/janus-play.js";

const video = document.getElementById("video");
const statusBox = document.getElementById("status");
const hint = document.getElementById("hint");
const problem = document.getElementById("problem");
const hold = document.getElementById("hold");
const state = {
  pc: null, ws: null, connected: false, retries: 0, lastFrames: 0, lastTime: 0, fps: 0, failures: 0,
  lostAt: performance.now(), // since when nothing has played (page load, or the last loss)
};
window.ganvj = state; // for tests and curious performers

// Not connected in this time, whatever the browser says (Chromium reports ICE
// failure only after about 30 s): the video cannot get through, said on screen.
// ?wait=SECONDS changes it.
const CONNECT_SECONDS = Number(new URLSearchParams(location.search).get("wait")) || 15;
// One try's ICE and DTLS, once the answer is in: a LAN needs well under a second,
// so a try stuck longer is abandoned and a fresh one made (a restarted server's
// first try can stall in ICE), without saying anything until CONNECT_SECONDS.
const ATTEMPT_SECONDS = Math.min(4, CONNECT_SECONDS);
const PROBLEM_SECONDS = 10;
const UNREACHABLE = "cannot reach the server's video: check that UDP is open between this machine and ganvj";

class MediaFailed extends Error {}

const HOLD_EVERY_MS = 500;
// Keep a copy of the picture while it plays: when the track ends the video
// element may already be blank, so the copy is taken before that.
function keepFrame() {
  if (!hold.hidden || video.readyState < 2 || !video.videoWidth) return;
  if (hold.width !== video.videoWidth || hold.height !== video.videoHeight) {
    hold.width = video.videoWidth; hold.height = video.videoHeight;
  }
  hold.getContext("2d").drawImage(video, 0, 0);
  state.held = true;
}

// Cover the video with the last frame (nothing to show before the first frame).
function holdPicture() {
  if (!state.held) return;
  hold.classList.remove("fading");
  hold.hidden = false;
}

// Frames flow again: fade the held picture out over the live one.
function release() {
  if (hold.hidden) return;
  const fade = () => {
    hold.classList.add("fading");
    setTimeout(() => { if (hold.classList.contains("fading")) hold.hidden = true; }, 900);
  };
  if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(fade);
  else fade();
}

// Say on screen what went wrong, for a stage tech looking at a black projector.
let problemTimer = null;
function showProblem(detail) {
  problem.textContent = `${UNREACHABLE}\n(${detail}; retrying)`;
  problem.hidden = false;
  state.failures += 1;
  clearTimeout(problemTimer);
  problemTimer = setTimeout(() => { problem.hidden = true; }, PROBLEM_SECONDS * 1000);
}

// Where to play from: ganvj itself, or a Janus SFU when the server names one.
async function route() {
  try {
    return await (await fetch("/api/viewer")).json();
  } catch (_) {
    return {};
  }
}

// Settles with `promise`, or rejects once the websocket closes or `seconds` pass.
function bounded(promise, ws, seconds, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${seconds} s`)), seconds * 1000);
    const closed = () => reject(new Error(`${what}: the server went away`));
    if (ws) ws.addEventListener("close", closed, { once: true });
    promise.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      if (ws) ws.removeEventListener("close", closed);
    });
  });
}

async function connect() {
  // While a server restarts, the kernel holds these requests on its port until
  // the new worker takes them: they wait rather than fail, and need no timeout.
  const { janus, mountpoint } = await route();
  const ws = janus ? null : await openSocket();
  const pc = new RTCPeerConnection({ iceServers: [] });
  state.ws = ws; state.pc = pc; state.janus = janus || null;
  if (!janus) pc.addTransceiver("video", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    // Play out as soon as a frame decodes: a live instrument, not a film.
    if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = 0;
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
    video.addEventListener("playing", release, { once: true });
    event.track.addEventListener("ended", () => { keepFrame(); holdPicture(); });
  });
  const lost = new Promise((resolve, reject) => {
    if (ws) ws.addEventListener("close", resolve, { once: true });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") {
        // ICE found no path, or the DTLS handshake over it failed.
        const ice = ["failed", "disconnected"].includes(pc.iceConnectionState);
        reject(new MediaFailed(ice ? "ICE failed: no network path" : "DTLS handshake failed"));
      } else if (pc.connectionState === "closed") resolve();
      else if (pc.connectionState === "disconnected") { holdPicture(); }
      else if (pc.connectionState === "connected") { state.connected = true; state.retries = 0; problem.hidden = true; release(); }
    });
  });
  lost.catch(() => {}); // raced below; a rejection before the race is not unhandled
  if (janus) state.hangUp = await watchJanus(pc, janus, mountpoint);
  else await bounded(negotiate(pc, ws), ws, CONNECT_SECONDS, "offer");
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
    if (failure) {
      console.warn("ganvj:", failure.message);
      // A stalled try is retried quietly; only a video that stays away is a problem.
      const away = (performance.now() - state.lostAt) / 1000;
      if (failure instanceof MediaFailed && away >= CONNECT_SECONDS) showProblem(failure.message);
    }
    keepFrame();
    holdPicture();
    // The old peer goes at once: its ICE and DTLS must not linger beside the new try.
    try { state.pc && state.pc.close(); } catch (_) {}
    try { state.ws && state.ws.close(); } catch (_) {}
    try { state.hangUp && state.hangUp(); } catch (_) {}
    state.hangUp = null;
    state.retries += 1;
    // Back off from a quarter second, doubling to 3 s: back at once after a restart,
    // gentle on a server that stays away.
    await retryPause(state.retries);
  }
}

async function updateStatus() {
  if (statusBox.hidden) return;
  const lines = [];
  if (state.pc) {
    const stats = await state.pc.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        const now = s.timestamp;
        if (state.lastTime) state.fps = ((s.framesDecoded - state.lastFrames) * 1000) / (now - state.lastTime);
        state.lastFrames = s.framesDecoded; state.lastTime = now;
        lines.push(`decoded ${s.framesDecoded}  ${state.fps.toFixed(1)} fps  ${s.frameWidth}x${s.frameHeight}`);
        lines.push(`jitter buffer ${(1000 * s.jitterBufferDelay / Math.max(1, s.jitterBufferEmittedCount)).toFixed(0)} ms  lost ${s.packetsLost}`);
      }
    });
  }
  try {
    const server = await (await fetch("/api/status")).json();
    lines.push(`server ${server.rendered_fps} fps rendered, ${server.sent_fps} sent, ${server.viewers} viewers`);
    lines.push(`${server.model} (${server.arch} ${server.resolution}px) on ${server.device}, ${server.frame_ms} ms/frame`);
  } catch (_) {
    lines.push("server unreachable");
  }
  lines.push(state.connected ? "connected" : `reconnecting (try ${state.retries})`);
  statusBox.textContent = lines.join("\n");
}

screenControls(statusBox, updateStatus);
setTimeout(() => hint.classList.add("gone"), 3000);
setInterval(updateStatus, 1000);
setInterval(keepFrame, HOLD_EVERY_MS);
run();
