// Keyboard shortcuts in the call: m mute/unmute, v camera, c chat, ? this list. Keys typed
// into a field, with a modifier, or while a dialog is open are left alone.

export const SHORTCUTS = Object.freeze([
  { key: "m", what: "Mute or unmute the microphone", button: "btn-mic" },
  { key: "v", what: "Turn the camera off or on", button: "btn-cam" },
  { key: "c", what: "Open or close the chat", button: "btn-chat" },
  { key: "?", what: "Show these shortcuts", button: null },
]);

function typing(target) {
  return target instanceof Element
    && (target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']") !== null);
}

/**
 * Listen for the shortcuts; `showHelp()` opens the list. Returns a function that stops.
 */
export function listenForShortcuts({ showHelp }) {
  for (const { key, button } of SHORTCUTS) {
    if (button) document.getElementById(button)?.setAttribute("aria-keyshortcuts", key);
  }
  const onKey = (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target) || document.querySelector("dialog[open]")) return;
    const key = event.key === "?" ? "?" : event.key.toLowerCase();
    const shortcut = SHORTCUTS.find((s) => s.key === key);
    if (!shortcut) return;
    event.preventDefault();
    if (!shortcut.button) {
      showHelp();
      return;
    }
    const button = document.getElementById(shortcut.button);
    if (button) button.click();
  };
  document.addEventListener("keydown", onKey);
  return () => document.removeEventListener("keydown", onKey);
}
