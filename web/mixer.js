// Decks, mixer and bends on the control page (issue 20): the deck selector (the
// page's deck controls then address /deck/b/...), the crossfade fade button and
// the bend panel, which sends /bend/LAYER/OP amount. Until the server knows these
// addresses it answers /error, which the page shows in its error line.

// Each operator's fader range; "translate" moves x and y together.
const BEND_RANGES = {
  rotate: [-180, 180, 0.5, 0],
  scale: [0.25, 4, 0.01, 1],
  translate: [-1, 1, 0.01, 0],
  flip: [0, 1, 1, 0],
  erode: [0, 8, 1, 0],
  dilate: [0, 8, 1, 0],
  ablate: [0, 1, 0.01, 0],
  gain: [0, 4, 0.01, 1],
};

export function setupMixer({ send, selectDeck }) {
  const $ = (selector) => document.querySelector(selector);
  const deckButtons = document.querySelectorAll("#deck-select [data-deck]");
  for (const button of deckButtons) {
    button.addEventListener("click", () => {
      for (const other of deckButtons) other.classList.toggle("on", other === button);
      selectDeck(button.dataset.deck);
    });
  }

  $("#mix-fade").addEventListener("click", () => {
    const beats = parseFloat($("#mix-beats").value);
    if (Number.isFinite(beats)) send("/mix/fade", beats);
  });

  const layer = $("#bend-layer");
  const op = $("#bend-op");
  const amount = $("#bend-amount");
  const fit = () => {
    const [min, max, step, rest] = BEND_RANGES[op.value];
    Object.assign(amount, { min, max, step });
    amount.value = rest;
  };
  op.addEventListener("change", fit);
  fit();
  let pending = false;
  amount.addEventListener("input", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const n = parseInt(layer.value, 10);
      const value = parseFloat(amount.value);
      if (!Number.isFinite(n) || n < 1 || !Number.isFinite(value)) return;
      const args = op.value === "translate" ? [value, value] : [op.value === "flip" ? Math.round(value) : value];
      send(`/bend/${n}/${op.value}`, ...args);
    });
  });
}
