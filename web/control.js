// The ganvj control page: the command vocabulary over the /ws websocket.
// Sends {"address", "args"}; follows {"type": "state"} feedback so several
// controllers stay in sync; reconnects after a server restart.

import { forgetToken, whoAmI, withToken } from "/token.js";
import { mountDoctor } from "/doctor.js";
import { setupInstrument } from "/instrument.js";
import { setupMixer } from "/mixer.js";
import { setupPresets } from "/presets.js";
import { setupOscAccess } from "/osc_access.js";
import { startPreview } from "/preview.js";

const KEYFRAMES = 16;
const DIRECTIONS = 8;
const LONG_PRESS_MS = 600;
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 5000;

const $ = (selector) => document.querySelector(selector);
const statusEl = $("#status");
const errorEl = $("#error");

// -- connection ------------------------------------------------------------

let socket = null;
let reconnectDelay = RECONNECT_MIN_MS;
let queryAddresses = [];

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return withToken(`${scheme}//${location.host}/ws`);
}

function connect() {
  socket = new WebSocket(wsUrl());
  socket.addEventListener("open", () => {
    reconnectDelay = RECONNECT_MIN_MS;
    statusEl.textContent = "connected";
    statusEl.className = "ok";
    for (const address of queryAddresses) send(address, "?");
  });
  socket.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === "state") applyState(message.address, message.args || []);
    else if (message.type === "error") showError(message.error);
  });
  socket.addEventListener("close", () => {
    statusEl.textContent = "reconnecting…";
    statusEl.className = "";
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
  });
}

// -- decks: the page's deck controls address the deck chosen here --------------
// Issue 20's fixed interface: a deck command is its bare address behind /deck/a or
// /deck/b (a bare address is deck a). The registry's `deck` flag names them once
// the server has decks; until then, these prefixes.
let deck = "a";
let deckPatterns = [];
const DECK_PREFIXES = ["/latent/", "/keyframe/", "/sequence/", "/style/", "/transform/", "/react/",
  "/model/load", "/bend/", "/blend/"];

function isDeckAddress(address) {
  if (deckPatterns.length) return deckPatterns.some((regex) => regex.test(address));
  return DECK_PREFIXES.some((prefix) => address.startsWith(prefix));
}

function routed(address) {
  return deck === "b" && isDeckAddress(address) ? `/deck/b${address}` : address;
}

function selectDeck(name) {
  deck = name;
  // Ask the chosen deck for its values, so the page shows them.
  for (const address of queryAddresses) if (isDeckAddress(address)) send(address, "?");
}

function send(address, ...args) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ address: routed(address), args }));
}

let errorTimer = 0;
function showError(text) {
  errorEl.textContent = text;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => (errorEl.textContent = ""), 4000);
}

// Which addresses to ask for on (re)connect: every queryable concrete address.
async function loadQueries() {
  try {
    const response = await fetch("/api/commands");
    const commands = await response.json();
    const out = [];
    for (const command of commands) {
      if (!command.queryable) continue;
      const names = Object.keys(command.path || {});
      if (names.length === 0) {
        out.push(command.address);
        continue;
      }
      const { min, max } = command.path[names[0]];
      for (let i = min; i <= max; i++) out.push(command.address.replace(`{${names[0]}}`, i));
    }
    queryAddresses = out;
    deckPatterns = commands
      .filter((command) => command.deck)
      .map((command) => new RegExp(`^${command.address.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{\w+\}/g, "[0-9]+")}$`));
    return commands;
  } catch {
    queryAddresses = ["/latent/xy", "/latent/wander", "/keyframe/current", "/tempo/bpm"];
    return [];
  }
}

// -- feedback --------------------------------------------------------------

const handlers = new Map();

function applyState(address, args) {
  // Feedback of the deck this page does not show is not this page's to draw.
  const named = /^\/deck\/([ab])(\/.*)$/.exec(address);
  if (named) {
    if (named[1] !== deck) return;
    address = named[2];
  } else if (deck === "b" && isDeckAddress(address)) {
    return;
  }
  const handler = handlers.get(address);
  if (handler) handler(args);
}

// -- XY pad ----------------------------------------------------------------

const pad = $("#xy");
const dot = pad.querySelector(".dot");
let xyPending = null;

function placeDot(x, y) {
  dot.style.left = `${x * 100}%`;
  dot.style.top = `${y * 100}%`;
}

function padPoint(event) {
  const rect = pad.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
}

function flushXY() {
  if (xyPending) send("/latent/xy", ...xyPending);
  xyPending = null;
}

function onPad(event) {
  if (event.type === "pointerdown") pad.setPointerCapture(event.pointerId);
  else if (!pad.hasPointerCapture(event.pointerId)) return;
  const point = padPoint(event);
  placeDot(...point);
  if (!xyPending) requestAnimationFrame(flushXY); // at most one message per frame
  xyPending = point;
}

pad.addEventListener("pointerdown", onPad);
pad.addEventListener("pointermove", onPad);
handlers.set("/latent/xy", ([x, y]) => placeDot(x, y));
placeDot(0.5, 0.5);

// -- direction faders ------------------------------------------------------

const dirs = $("#dirs");
for (let k = 1; k <= DIRECTIONS; k++) {
  const wrap = document.createElement("div");
  wrap.className = "fader";
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min: -1, max: 1, step: 0.01, value: 0 });
  input.dataset.address = `/latent/dir/${k}`;
  input.addEventListener("dblclick", () => {
    input.value = 0;
    send(input.dataset.address, 0);
  });
  const label = document.createElement("span");
  label.textContent = `d${k}`;
  wrap.append(input, label);
  dirs.append(wrap);
}

// -- StyleGAN: mixing rows (keyframe + amount), translate, what the model offers --

for (const row of document.querySelectorAll("[data-mix]")) {
  const base = `/style/${row.dataset.mix}`;
  row.insertAdjacentHTML(
    "beforeend",
    `<input type="number" min="0" max="${KEYFRAMES}" step="1" value="0" data-address="${base}/keyframe">` +
      `<input type="range" min="0" max="1" step="0.01" value="0" data-address="${base}/amount">`,
  );
}
const moves = document.querySelectorAll("#translate input");
for (const input of moves) {
  input.addEventListener("input", () => send("/transform/translate", ...[...moves].map((m) => parseFloat(m.value))));
}
handlers.set("/transform/translate", (xy) => xy.forEach((v, i) => (moves[i].value = v)));
handlers.set("/model/info", ([arch, space, classes, transform]) => {
  $("#model-info").textContent = `${arch} · ${space}`;
  $("#stylegan").classList.toggle("off", space !== "w");
  $("#class").closest(".row").classList.toggle("off", !classes);
  for (const row of document.querySelectorAll(".sg3")) row.classList.toggle("off", !transform);
});

// -- generic bindings: data-address, data-send, data-toggle -----------------

for (const input of document.querySelectorAll("[data-address]")) {
  const address = input.dataset.address;
  const numeric = input.tagName === "INPUT";
  const integer = numeric && input.step === "1";
  const read = () => (numeric ? (integer ? parseInt(input.value, 10) : parseFloat(input.value)) : input.value);
  const eventName = input.type === "range" ? "input" : "change";
  let pending = false;
  input.addEventListener(eventName, () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const value = read();
      if (numeric && !Number.isFinite(value)) return;
      send(address, value);
    });
  });
  handlers.set(address, ([value]) => {
    if (document.activeElement === input && input.type !== "range") return; // being typed in
    input.value = value;
    if (address === "/keyframe/morph") $("#morph-value").textContent = Number(value).toFixed(1);
  });
}

for (const button of document.querySelectorAll("[data-send]")) {
  button.addEventListener("click", () => send(button.dataset.send));
}

for (const button of document.querySelectorAll("[data-toggle]")) {
  const address = button.dataset.toggle;
  button.addEventListener("click", () => send(address, button.classList.contains("on") ? 0 : 1));
  handlers.set(address, ([on]) => button.classList.toggle("on", Boolean(on)));
}

$("#morph").addEventListener("input", (e) => ($("#morph-value").textContent = Number(e.target.value).toFixed(1)));

$("#seed-go").addEventListener("click", () => {
  const seed = parseInt($("#seed").value, 10);
  if (Number.isFinite(seed)) send("/latent/seed", seed);
});
handlers.set("/latent/seed", ([seed]) => ($("#seed").value = seed));

// -- keyframe grid: tap = jump, long press = store --------------------------

const keys = $("#keys");
const keyButtons = [];
// Thumbnail versions: a store is announced; those drawn at start or after a model
// switch are asked for until they exist (version 0, or the old model's version).
const thumbVersions = new Array(KEYFRAMES).fill(0);
const thumbStale = new Array(KEYFRAMES).fill(0);
setInterval(() => {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  thumbVersions.forEach((version, i) => {
    if (version === thumbStale[i]) send(`/keyframe/${i + 1}/thumb`, "?");
  });
}, 1000);
for (let n = 1; n <= KEYFRAMES; n++) {
  const button = document.createElement("button");
  button.dataset.learn = `/keyframe/${n}/jump`;
  // A thumbnail drawn by the server, the number over it, and the morph's progress below.
  const thumb = document.createElement("img");
  thumb.alt = "";
  thumb.hidden = true;
  thumb.addEventListener("load", () => (thumb.hidden = false));
  const label = document.createElement("span");
  label.textContent = n;
  const morph = document.createElement("div");
  morph.className = "morph";
  button.append(thumb, label, morph);
  handlers.set(`/keyframe/${n}/thumb`, ([version]) => {
    thumbVersions[n - 1] = version;
    if (version > 0 && version !== thumbStale[n - 1]) thumb.src = `/api/thumb/${n}?v=${version}`;
  });
  let timer = 0;
  let stored = false;
  button.addEventListener("pointerdown", () => {
    stored = false;
    timer = setTimeout(() => {
      stored = true;
      send(`/keyframe/${n}/store`);
      if (navigator.vibrate) navigator.vibrate(30);
    }, LONG_PRESS_MS);
  });
  const cancel = () => clearTimeout(timer);
  button.addEventListener("pointerleave", cancel);
  button.addEventListener("pointercancel", cancel);
  button.addEventListener("pointerup", () => {
    cancel();
    if (!stored) send(`/keyframe/${n}/jump`);
  });
  button.addEventListener("contextmenu", (e) => e.preventDefault());
  handlers.set(`/keyframe/${n}/store`, () => {
    button.classList.add("stored");
    setTimeout(() => button.classList.remove("stored"), 400);
  });
  keys.append(button);
  keyButtons.push(button);
}
handlers.set("/keyframe/current", ([n]) => {
  keyButtons.forEach((button, i) => button.classList.toggle("current", i + 1 === n));
});
handlers.set("/keyframe/progress", ([n, progress]) => {
  keyButtons.forEach((button, i) => {
    const bar = button.querySelector(".morph");
    bar.style.width = i + 1 === n && progress < 1 ? `${progress * 100}%` : "0";
  });
});

// -- models ----------------------------------------------------------------

async function loadModels() {
  const select = $("#model");
  try {
    const response = await fetch("/api/models");
    const data = await response.json();
    const list = Array.isArray(data) ? data : data.models || [];
    for (const item of list) {
      const name = typeof item === "string" ? item : item.name;
      // Only generators can be played; pix2pix and encoders serve reactions.
      const playable = typeof item === "string" || item.kind === "unconditional";
      if (name && playable) select.append(new Option(name, name));
    }
  } catch {
    // No model list: the select stays empty and the load button does nothing.
  }
}
$("#model-load").addEventListener("click", () => {
  const name = $("#model").value;
  if (name) send("/model/load", name);
});
handlers.set("/model/load", ([name]) => {
  if ($("#model").value !== name) thumbStale.splice(0, KEYFRAMES, ...thumbVersions);
  $("#model").value = name;
});

// -- access ----------------------------------------------------------------

// Without the performer's link this page cannot play: say so, do nothing else.
function lock(reason) {
  $("main").hidden = true;
  statusEl.textContent = "not connected";
  $("#locked").hidden = false;
  if (reason) $("#locked-reason").textContent = reason;
}

// A link pasted into this open page changes only the fragment: start again with it.
window.addEventListener("hashchange", () => {
  if (/(?:^#|&)t=/.test(location.hash)) location.reload();
});

let who;
try {
  who = await whoAmI();
} catch {
  who = { role: null, error: "the server did not answer: reload to try again" };
}
if (who.role === "performer" || who.role === "admin") {
  const [commands] = await Promise.all([loadQueries(), loadModels()]);
  // Master, modulation and MIDI (web/instrument.js) share this page's socket and handlers.
  setupInstrument({ send, handlers, commands, isOpen: () => socket && socket.readyState === WebSocket.OPEN });
  setupOscAccess({ send, handlers });
  setupPresets({ send, handlers, showError });
  setupMixer({ send, selectDeck });
  connect();
  startPreview();
} else {
  if (who.error) forgetToken(); // a stale or mistyped link: ask for a new one
  lock(who.error);
}

// A worker that kept dying was started on safe settings: say so, and why, until it is not.
async function showSafeMode() {
  const line = document.getElementById("safe-mode");
  try {
    const supervisor = (await (await fetch("/api/status")).json()).supervisor || {};
    line.textContent = supervisor.safe_mode ? `safe mode: ${supervisor.safe_mode}` : "";
    line.hidden = !supervisor.safe_mode;
  } catch (_) { /* the server is restarting: the next poll tells */ }
}
showSafeMode();
setInterval(showSafeMode, 5000);
mountDoctor(document.querySelector("#doctor"));
