// The control page's live preview: the same shared stream the viewers get
// (one encode for everyone; a preview costs bandwidth, never an encoder).
// The toggle stops it on a phone where bandwidth matters; it is remembered.
import { negotiate, openSocket } from "/rtc.js";

const video = document.getElementById("preview");
const toggle = document.getElementById("preview-toggle");
const KEY = "ganvj.preview";
const state = { pc: null, ws: null, connected: false, frames: 0, on: localStorage.getItem(KEY) !== "off" };
let started = false;
window.ganvjPreview = state; // for tests and the curious

function countFrames() {
  if (!("requestVideoFrameCallback" in video)) return;
  const tick = () => {
    state.frames += 1;
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}

async function connect() {
  const ws = await openSocket();
  const pc = new RTCPeerConnection({ iceServers: [] });
  state.ws = ws;
  state.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = 0;
    video.srcObject = event.streams[0] || new MediaStream([event.track]);
    video.play().catch(() => {});
  });
  const done = new Promise((resolve) => {
    ws.addEventListener("close", resolve, { once: true });
    pc.addEventListener("connectionstatechange", () => {
      state.connected = pc.connectionState === "connected";
      if (["failed", "closed"].includes(pc.connectionState)) resolve();
    });
  });
  await negotiate(pc, ws);
  await done;
}

function hangUp() {
  try { state.pc && state.pc.close(); } catch (_) {}
  try { state.ws && state.ws.close(); } catch (_) {}
  state.pc = state.ws = null;
  state.connected = false;
  video.srcObject = null;
}

async function run() {
  let retries = 0;
  for (;;) {
    if (state.on) {
      try {
        await connect();
      } catch (err) {
        console.warn("ganvj preview:", err.message);
      }
      hangUp();
      retries += 1;
    }
    await new Promise((r) => setTimeout(r, state.on ? Math.min(500 * retries, 3000) : 500));
  }
}

function show() {
  started = true;
  toggle.classList.toggle("on", state.on);
  video.hidden = !state.on;
}

toggle.addEventListener("click", () => {
  if (!started) return;
  state.on = !state.on;
  localStorage.setItem(KEY, state.on ? "on" : "off");
  if (!state.on) hangUp();
  show();
});

// Started by the control page once it may play: a locked page opens no socket at all.
export function startPreview() {
  show();
  countFrames();
  run();
}
