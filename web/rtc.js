// Shared WebRTC signalling over /ws: one offer out, one answer back (no trickle ICE).
import { withToken } from "/token.js";

// `authorised`: bring the performer's token (the camera); a viewer needs none.
export function wsUrl(authorised = false) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/ws`;
  return authorised ? withToken(url) : url;
}

// Resolve once ICE gathering is complete: the one offer must carry every candidate.
export function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// Send our offer on an open websocket and apply the answer that comes back.
// `extra` rides along in the offer message (the camera page sends role: "camera").
export async function negotiate(pc, ws, extra = {}) {
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc);
  const answer = new Promise((resolve, reject) => {
    const onMessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "answer") { ws.removeEventListener("message", onMessage); resolve(msg.sdp); }
      else if (msg.type === "error") { ws.removeEventListener("message", onMessage); reject(new Error(msg.error)); }
    };
    ws.addEventListener("message", onMessage);
  });
  ws.send(JSON.stringify({ ...extra, type: "offer", sdp: pc.localDescription.sdp }));
  await pc.setRemoteDescription({ type: "answer", sdp: await answer });
}

export function openSocket(authorised = false) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(authorised));
    ws.addEventListener("open", () => resolve(ws), { once: true });
    ws.addEventListener("error", () => reject(new Error("websocket failed")), { once: true });
  });
}

// Reject with makeError() if `pc` is not connected `seconds` after this call: a try
// stuck in ICE is dropped and made again rather than waited out. The rejection is
// handled here too, since it may fire after the caller's race is over.
export function connectedWithin(pc, seconds, makeError) {
  const stuck = new Promise((_, reject) => setTimeout(() => {
    if (pc.connectionState !== "connected") reject(makeError(`not connected after ${seconds} s`));
  }, seconds * 1000));
  stuck.catch(() => {});
  return stuck;
}

// The pause before reconnect try `retries` (1, 2, ...): 0.25 s, doubling to 3 s.
export function retryPause(retries) {
  return new Promise((r) => setTimeout(r, Math.min(250 * 2 ** (retries - 1), 3000)));
}
