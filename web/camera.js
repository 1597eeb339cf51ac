// Send this device's camera to the server over WebRTC, and trigger reactions.
import { negotiate, openSocket } from "/rtc.js";

const preview = document.getElementById("preview");
const stateBox = document.getElementById("state");
const devices = document.getElementById("devices");
const state = { pc: null, ws: null, sending: false, error: null, server: null };
window.ganvjCamera = state; // for tests

function show(text) { stateBox.textContent = text; }

async function listDevices() {
  const all = await navigator.mediaDevices.enumerateDevices();
  devices.innerHTML = "";
  for (const d of all.filter((x) => x.kind === "videoinput")) {
    const option = document.createElement("option");
    option.value = d.deviceId; option.textContent = d.label || `camera ${devices.length + 1}`;
    devices.appendChild(option);
  }
}

async function ensureSocket() {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) return state.ws;
  state.ws = await openSocket(true); // a camera needs the performer's token
  state.ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "state" && msg.address.startsWith("/react/")) {
      state.server = state.server || {};
      state.server[msg.address] = msg.args;
      render();
    } else if (msg.type === "error") {
      state.error = msg.error; render();
    }
  });
  state.ws.addEventListener("close", () => { stop(); state.ws = null; });
  return state.ws;
}

function render() {
  const lines = [state.sending ? "sending camera" : "not sending"];
  if (state.server) for (const [k, v] of Object.entries(state.server)) lines.push(`${k} ${v.join(" ")}`);
  if (state.error) lines.push(`error: ${state.error}`);
  show(lines.join("\n"));
  document.querySelectorAll("[data-mode]").forEach((b) => {
    const mode = state.server && state.server["/react/mode"];
    b.classList.toggle("on", !!mode && mode[0] === b.dataset.mode);
  });
}

async function start() {
  stop();
  state.error = null;
  const constraints = { video: devices.value ? { deviceId: { exact: devices.value } } : { width: 640, height: 480 } };
  const media = await navigator.mediaDevices.getUserMedia(constraints);
  preview.srcObject = media;
  const ws = await ensureSocket();
  const pc = new RTCPeerConnection({ iceServers: [] });
  state.pc = pc;
  for (const track of media.getVideoTracks()) pc.addTransceiver(track, { direction: "sendonly" });
  pc.addEventListener("connectionstatechange", () => {
    if (["failed", "closed"].includes(pc.connectionState)) stop();
  });
  // The server tells the two kinds of offer apart by role.
  await negotiate(pc, ws, { role: "camera" });
  state.sending = true;
  ws.send(JSON.stringify({ address: "/react/mode", args: ["?"] }));
  await listDevices();
  render();
}

function stop() {
  if (state.pc) { try { state.pc.close(); } catch (_) {} }
  state.pc = null;
  if (preview.srcObject) { preview.srcObject.getTracks().forEach((t) => t.stop()); preview.srcObject = null; }
  state.sending = false;
  render();
}

async function command(address, args = []) {
  const ws = await ensureSocket();
  ws.send(JSON.stringify({ address, args }));
}

if (!window.isSecureContext || !navigator.mediaDevices) {
  document.getElementById("secure").hidden = false;
  document.getElementById("send").disabled = true;
} else {
  listDevices().catch(() => {});
}
document.getElementById("send").addEventListener("click", () => start().catch((e) => { state.error = e.message; render(); }));
document.getElementById("stop").addEventListener("click", stop);
document.getElementById("trigger").addEventListener("click", () => command("/react/trigger", [10.0]));
document.getElementById("react-stop").addEventListener("click", () => command("/react/stop"));
document.querySelectorAll("[data-mode]").forEach((b) => b.addEventListener("click", () => command("/react/mode", [b.dataset.mode])));
window.ganvjStartCamera = start; // tests start it without a click
render();
