// Presets on the control page: a button per stored preset (tap = recall, long
// press = store over it), a name field with store and delete. The list is the
// server's /preset/list answer, sent to every controller whenever it changes.

const LONG_PRESS_MS = 600;
const NAME = /^[A-Za-z0-9_-]{1,32}$/;

export function setupPresets({ send, handlers, showError }) {
  const $ = (selector) => document.querySelector(selector);
  const list = $("#presets");
  const nameInput = $("#preset-name");
  const morph = $("#preset-morph");

  const named = () => {
    const name = nameInput.value.trim();
    if (NAME.test(name)) return name;
    showError("a preset name is 1..32 of A-Z a-z 0-9 _ -");
    return null;
  };
  const recall = (name) => {
    const seconds = parseFloat(morph.value);
    if (Number.isFinite(seconds) && seconds > 0) send("/preset/recall", name, seconds);
    else send("/preset/recall", name);
  };

  $("#preset-store").addEventListener("click", () => {
    const name = named();
    if (name) send("/preset/store", name);
  });
  $("#preset-delete").addEventListener("click", () => {
    const name = named();
    if (name) send("/preset/delete", name);
  });

  function button(name) {
    const element = document.createElement("button");
    element.textContent = name;
    element.dataset.preset = name;
    let timer = 0;
    let stored = false;
    let pressed = false; // a release without a press here (the list redrawn) does nothing
    element.addEventListener("pointerdown", () => {
      pressed = true;
      stored = false;
      timer = setTimeout(() => {
        stored = true;
        send("/preset/store", name);
        if (navigator.vibrate) navigator.vibrate(30);
      }, LONG_PRESS_MS);
    });
    const cancel = () => {
      clearTimeout(timer);
      pressed = false;
    };
    element.addEventListener("pointerleave", cancel);
    element.addEventListener("pointercancel", cancel);
    element.addEventListener("pointerup", () => {
      const tapped = pressed && !stored;
      cancel();
      nameInput.value = name; // store and delete act on the last one touched
      if (tapped) recall(name);
    });
    element.addEventListener("contextmenu", (e) => e.preventDefault());
    return element;
  }

  // Buttons are kept across list updates, so a press in progress survives a store.
  const buttons = new Map();
  handlers.set("/preset/list", (names) => {
    const wanted = names.map(String);
    for (const name of wanted) if (!buttons.has(name)) buttons.set(name, button(name));
    for (const name of [...buttons.keys()]) if (!wanted.includes(name)) buttons.delete(name);
    list.replaceChildren(...wanted.map((name) => buttons.get(name)));
  });
}
