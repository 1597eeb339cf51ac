// What every picture page (/ and /out/NAME) does with a click and a key: a click
// toggles full screen, F enters it, S shows or hides the status overlay.
export function screenControls(statusBox, updateStatus) {
  document.addEventListener("click", () => {
    if (!document.fullscreenElement) document.documentElement.requestFullscreen().catch(() => {});
    else document.exitFullscreen();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "s" || event.key === "S") { statusBox.hidden = !statusBox.hidden; updateStatus(); }
    if (event.key === "f" || event.key === "F") document.documentElement.requestFullscreen().catch(() => {});
  });
}
