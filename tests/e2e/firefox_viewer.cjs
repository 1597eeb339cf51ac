// Firefox ESR watches the viewer page, headless over WebDriver BiDi (npm puppeteer-core).
// Usage: node firefox_viewer.cjs URL FRAMES TIMEOUT_S. Prints one JSON line:
// {"framesDecoded": n, "width": w, "height": h, "offerHasOnlyMdns": bool, "problem": text}.
// Firefox's getVideoPlaybackQuality() stays 0 for WebRTC video: frames are
// counted with getStats() (inbound-rtp framesDecoded). Stock preferences: host
// addresses stay hidden behind mDNS names, as on any projector machine.
"use strict";
const path = require("path");

const modules = process.env.GANVJ_NODE_MODULES || path.join(__dirname, "..", "..", ".node", "node_modules");
const puppeteer = require(path.join(modules, "puppeteer-core"));

const FRAMES_JS = `async () => {
  const pc = window.ganvj && window.ganvj.pc;
  if (!pc) return { framesDecoded: 0, width: 0, height: 0 };
  let out = { framesDecoded: 0, width: 0, height: 0 };
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      out = { framesDecoded: s.framesDecoded || 0, width: s.frameWidth || 0, height: s.frameHeight || 0 };
    }
  });
  const offer = pc.localDescription ? pc.localDescription.sdp : "";
  const hosts = [...offer.matchAll(/a=candidate:\\S+ \\d+ \\S+ \\d+ (\\S+) \\d+ typ host/g)].map((m) => m[1]);
  out.offerHasOnlyMdns = hosts.length > 0 && hosts.every((h) => h.endsWith(".local"));
  out.problem = document.getElementById("problem").hidden ? "" : document.getElementById("problem").textContent;
  return out;
}`;

async function main() {
  const [url, frames, timeoutS] = process.argv.slice(2);
  const want = Number(frames);
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.GANVJ_FIREFOX || "/usr/bin/firefox-esr",
    headless: true,
    protocol: "webDriverBiDi",
  });
  let last = {};
  try {
    const page = await browser.newPage();
    page.on("console", (msg) => process.stderr.write(`firefox console: ${msg.text()}\n`));
    await page.goto(url);
    const deadline = Date.now() + Number(timeoutS) * 1000;
    for (;;) {
      last = await page.evaluate(`(${FRAMES_JS})()`);
      if (last.framesDecoded >= want || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(last) + "\n");
  process.exit(last.framesDecoded >= want ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`firefox_viewer: ${err.stack || err}\n`);
  process.exit(2);
});
