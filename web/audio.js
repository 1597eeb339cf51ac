// Send a microphone or line input to ganvj over WebRTC (offer role "audio").
// The browser's own processing (echo cancellation, noise suppression, gain)
// is turned off: the server wants the music as it is.
import { negotiate, openSocket } from "/rtc.js";

const $ = (id) => document.getElementById(id);
const state = { pc: null, ws: null, stream: null, connected: false };
window.ganvjAudio = state;

function say(text) {
  $("state").textContent = text;
}

async function listDevices() {
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
  $("devices").replaceChildren(...devices.map((d, i) => new Option(d.label || `input ${i + 1}`, d.deviceId)));
}

function meter(stream) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const draw = () => {
    if (!state.stream) return context.close();
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const rms = Math.sqrt(sum / samples.length);
    $("level").firstElementChild.style.width = `${Math.min(100, rms * 300)}%`;
    requestAnimationFrame(draw);
  };
  draw();
}

async function start() {
  stop();
  const deviceId = $("devices").value;
  const audio = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
  if (deviceId) audio.deviceId = { exact: deviceId };
  state.stream = await navigator.mediaDevices.getUserMedia({ audio });
  await listDevices();
  const ws = await openSocket(true); // sound steers the show: the performer's token
  const pc = new RTCPeerConnection({ iceServers: [] });
  state.ws = ws;
  state.pc = pc;
  for (const track of state.stream.getAudioTracks()) pc.addTrack(track, state.stream);
  pc.addEventListener("connectionstatechange", () => {
    state.connected = pc.connectionState === "connected";
    say(`audio: ${pc.connectionState}`);
  });
  ws.addEventListener("close", () => say("disconnected"));
  await negotiate(pc, ws, { role: "audio" });
  $("send").classList.add("on");
  meter(state.stream);
}

function stop() {
  try { state.pc && state.pc.close(); } catch (_) {}
  try { state.ws && state.ws.close(); } catch (_) {}
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.pc = state.ws = state.stream = null;
  state.connected = false;
  $("send").classList.remove("on");
}

if (!window.isSecureContext || !navigator.mediaDevices) {
  $("secure").hidden = false;
  $("send").disabled = true;
} else {
  listDevices().catch(() => {});
}
$("send").addEventListener("click", () => start().catch((err) => say(`error: ${err.message}`)));
$("stop").addEventListener("click", () => { stop(); say("stopped"); });
