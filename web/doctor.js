// The control page's "Check this machine" section: `ganvj doctor`'s rows from
// GET /api/doctor (performer), fetched when the section is opened or re-run.

import { withToken } from "/token.js";

const MARK = { ok: "ok", warn: "look", fail: "FAIL", info: "—" };

export function mountDoctor(details) {
  const body = details.querySelector("tbody");
  const state = details.querySelector(".doctor-state");
  let running = false;

  async function run() {
    if (running) return;
    running = true;
    state.textContent = "checking… (a few seconds)";
    try {
      const response = await fetch(withToken("/api/doctor"));
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || response.statusText);
      body.replaceChildren(...data.rows.map(row));
      const failing = data.rows.filter((r) => r.status === "fail").length;
      state.textContent = failing ? `${failing} failing` : "nothing failing";
    } catch (error) {
      state.textContent = `the check did not run: ${error.message}`;
    } finally {
      running = false;
    }
  }

  details.addEventListener("toggle", () => { if (details.open) run(); });
  details.querySelector("button").addEventListener("click", run);
}

function row({ name, status, detail, fix }) {
  const tr = document.createElement("tr");
  tr.className = `doctor-${status}`;
  for (const text of [name, MARK[status] || status, fix ? `${detail} — fix: ${fix}` : detail]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}
