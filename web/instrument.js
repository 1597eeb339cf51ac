// The control page's instrument panels: master blackout, modulation routes and
// triggers with live source meters, and MIDI learn. Everything goes through the
// same commands as OSC (/output/*, /mod/*, /midi/*); the lists are redrawn from
// the server's feedback, so every open control page shows the same patch.

const $ = (selector) => document.querySelector(selector);
const METER_MS = 200;
const NOT_PATCHABLE = ["/mod/", "/midi/", "/tempo/bpm", "/tempo/link", "/feedback/"];

// Concrete addresses from the registry: {k} and {n} expanded over their ranges.
function expand(command) {
  const names = Object.keys(command.path || {});
  if (names.length === 0) return [command.address];
  const { min, max } = command.path[names[0]];
  const out = [];
  for (let i = min; i <= max; i++) out.push(command.address.replace(`{${names[0]}}`, i));
  return out;
}

function patchable(command) {
  return command.settable !== false && !NOT_PATCHABLE.some((p) => command.address.startsWith(p));
}

// A route drives one float with a range; a trigger fires a command needing no arguments.
function targets(commands) {
  const routes = [];
  const triggers = [];
  for (const command of commands) {
    if (!patchable(command)) continue;
    const required = (command.args || []).filter((a) => !a.optional);
    if (required.length === 1 && required[0].type === "f" && "min" in required[0] && "max" in required[0]) {
      routes.push(...expand(command));
    }
    if (required.length === 0) triggers.push(...expand(command));
  }
  return { routes, triggers };
}

function fill(select, values) {
  select.replaceChildren(...values.map((v) => new Option(v, v)));
}

function pairs(flat, size) {
  const out = [];
  for (let i = 0; i + size <= flat.length; i += size) out.push(flat.slice(i, i + size));
  return out;
}

function removable(text, onRemove, extra = []) {
  const item = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = text;
  const remove = document.createElement("button");
  remove.className = "small";
  remove.textContent = "×";
  remove.title = "remove";
  remove.addEventListener("click", onRemove);
  item.append(label, ...extra, remove);
  return item;
}

export function setupInstrument({ send, handlers, commands, isOpen }) {
  const { routes: routeTargets, triggers: triggerTargets } = targets(commands);
  const sources = ["audio/rms", "audio/bass", "audio/mid", "audio/high", "audio/onset", "tempo/phase", "tempo/bar"];
  const events = ["audio/onset", "tempo/beat", "tempo/bar"];
  fill($("#route-source"), sources);
  fill($("#route-target"), routeTargets);
  fill($("#trigger-source"), events);
  fill($("#trigger-target"), triggerTargets);
  $("#route-target").value = "/latent/truncation";
  $("#trigger-target").value = "/keyframe/next";

  // -- master: blackout with its fade ------------------------------------
  const blackout = $("#blackout");
  blackout.addEventListener("click", () => {
    if (document.body.classList.contains("learning")) return;
    const fade = parseFloat($("#blackout-fade").value);
    send("/output/blackout", blackout.classList.contains("on") ? 0 : 1, Number.isFinite(fade) ? fade : 0);
  });
  handlers.set("/output/blackout", ([on, seconds]) => {
    blackout.classList.toggle("on", Boolean(on));
    if (document.activeElement !== $("#blackout-fade")) $("#blackout-fade").value = seconds;
  });

  // -- routes and triggers -------------------------------------------------
  $("#route-add").addEventListener("click", () => {
    const amount = parseFloat($("#route-amount").value);
    if (Number.isFinite(amount)) send("/mod/route", $("#route-source").value, $("#route-target").value, amount);
  });
  handlers.set("/mod/route", (flat) => {
    $("#routes").replaceChildren(
      ...pairs(flat, 3).map(([source, target, amount]) => {
        const input = document.createElement("input");
        Object.assign(input, { type: "number", min: -10, max: 10, step: 0.05, value: amount });
        input.addEventListener("change", () => {
          const value = parseFloat(input.value);
          if (Number.isFinite(value)) send("/mod/route", source, target, value);
        });
        return removable(`${source} → ${target}`, () => send("/mod/route", source, target, 0), [input]);
      }),
    );
  });
  $("#trigger-add").addEventListener("click", () =>
    send("/mod/trigger", $("#trigger-source").value, $("#trigger-target").value, 1),
  );
  handlers.set("/mod/trigger", (flat) => {
    $("#triggers").replaceChildren(
      ...pairs(flat, 2).map(([source, target]) =>
        removable(`${source} fires ${target}`, () => send("/mod/trigger", source, target, 0)),
      ),
    );
  });

  // -- source meters: polled while the page is visible ---------------------
  const meters = $("#meters");
  const bars = new Map();
  for (const source of sources) {
    const name = document.createElement("span");
    name.textContent = source;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fillBar = document.createElement("i");
    bar.append(fillBar);
    meters.append(name, bar);
    bars.set(source, fillBar);
  }
  handlers.set("/mod/sources", (flat) => {
    for (const [source, value] of pairs(flat, 2)) {
      const bar = bars.get(source);
      if (bar) bar.style.width = `${Math.round(Math.min(1, Math.max(0, value)) * 100)}%`;
    }
  });
  setInterval(() => {
    if (!document.hidden && isOpen()) send("/mod/sources", "?");
  }, METER_MS);

  // -- MIDI learn: arm, touch a control here, move a knob -----------------
  const learn = $("#learn");
  const learnState = $("#learn-state");
  let armed = false;
  const setArmed = (on) => {
    armed = on;
    document.body.classList.toggle("learning", on);
    learn.classList.toggle("on", on);
    if (on) learnState.textContent = "tap a control on this page…";
  };
  learn.addEventListener("click", () => {
    if (armed || learnState.dataset.target) {
      send("/midi/learn", ""); // cancel
      setArmed(false);
    } else setArmed(true);
  });
  // Capture phase: while armed, a touch picks the control instead of playing it.
  document.addEventListener(
    "pointerdown",
    (event) => {
      if (!armed) return;
      const control = event.target.closest("[data-address], [data-send], [data-toggle], [data-learn]");
      if (!control || control === learn) return;
      event.preventDefault();
      event.stopPropagation();
      const address =
        control.dataset.learn || control.dataset.address || control.dataset.send || control.dataset.toggle;
      send("/midi/learn", address);
      setArmed(false);
      swallow = true;
      setTimeout(() => (swallow = false), 1000);
    },
    true,
  );
  // The release and click that follow the picking touch must not play the control.
  let swallow = false;
  for (const type of ["pointerup", "click"]) {
    document.addEventListener(
      type,
      (event) => {
        if (!swallow) return;
        event.preventDefault();
        event.stopPropagation();
        if (type === "click") swallow = false;
      },
      true,
    );
  }
  handlers.set("/midi/learn", ([target]) => {
    learnState.dataset.target = target || "";
    learn.classList.toggle("on", Boolean(target) || armed);
    learnState.textContent = target ? `move a knob or hit a pad for ${target}` : "";
  });
  handlers.set("/midi/bind", (flat) => {
    $("#mappings").replaceChildren(
      ...pairs(flat, 4).map(([kind, channel, number, target]) =>
        removable(`${kind} ${channel}/${number} → ${target}`, () => send("/midi/bind", kind, channel, number, "")),
      ),
    );
  });
}
