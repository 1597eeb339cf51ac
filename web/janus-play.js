// Play a Janus Streaming mountpoint, speaking Janus's HTTP API directly (no janus.js):
// create a session, attach the Streaming plugin, "watch" (Janus sends the offer),
// answer with every candidate, "start"; keep the session alive while playing.
import { gatheringComplete } from "/rtc.js";

const KEEPALIVE_MS = 25000; // Janus ends a silent session after 60 s

function transaction() {
  return Math.random().toString(36).slice(2, 12);
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...body, transaction: transaction() }),
  });
  const reply = await response.json();
  if (reply.janus === "error") throw new Error(`Janus: ${reply.error && reply.error.reason}`);
  const data = reply.plugindata && reply.plugindata.data;
  if (data && data.error) throw new Error(`Janus streaming: ${data.error}`);
  return reply;
}

// Resolve with the first event of the session that carries a JSEP offer.
async function offerEvent(url, session) {
  for (let i = 0; i < 10; i += 1) {
    const reply = await (await fetch(`${url}/${session}?maxev=1`)).json();
    const data = reply.plugindata && reply.plugindata.data;
    if (data && data.error) throw new Error(`Janus streaming: ${data.error}`);
    if (reply.jsep) return reply.jsep;
  }
  throw new Error("Janus sent no offer");
}

// Attach `pc` to the mountpoint; returns a function that hangs up.
export async function watchJanus(pc, url, mountpoint) {
  const session = (await post(url, { janus: "create" })).data.id;
  const handle = (await post(`${url}/${session}`, { janus: "attach", plugin: "janus.plugin.streaming" })).data.id;
  const keepalive = setInterval(() => {
    post(`${url}/${session}`, { janus: "keepalive" }).catch(() => {});
  }, KEEPALIVE_MS);
  const hangUp = () => {
    clearInterval(keepalive);
    post(`${url}/${session}`, { janus: "destroy" }).catch(() => {});
  };
  try {
    await post(`${url}/${session}/${handle}`, { janus: "message", body: { request: "watch", id: mountpoint } });
    const offer = await offerEvent(url, session);
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await gatheringComplete(pc);
    await post(`${url}/${session}/${handle}`, {
      janus: "message",
      body: { request: "start" },
      jsep: { type: "answer", sdp: pc.localDescription.sdp },
    });
  } catch (err) {
    hangUp();
    throw err;
  }
  return hangUp;
}
