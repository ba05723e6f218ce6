// Friendly, stable labels for peer ids ("Teal Heron"): the same on every page, no accounts.

const COLOURS = ["Amber", "Azure", "Coral", "Jade", "Lilac", "Olive", "Plum", "Rose",
  "Ruby", "Sage", "Sky", "Slate", "Teal", "Topaz", "Violet", "Gold"];
const ANIMALS = ["Badger", "Crane", "Dolphin", "Falcon", "Fox", "Gecko", "Heron", "Ibex",
  "Koala", "Lynx", "Marten", "Otter", "Panda", "Puffin", "Raven", "Seal", "Tiger", "Wren"];
const HUES = [40, 210, 12, 155, 280, 75, 300, 340, 350, 110, 195, 220, 178, 30, 265, 48];

function hash(text) {
  let h = 2166136261; // FNV-1a
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** "Teal Heron" for a peer id. */
export function peerLabel(peerId) {
  const h = hash(String(peerId));
  return `${COLOURS[h % COLOURS.length]} ${ANIMALS[(h >>> 8) % ANIMALS.length]}`;
}

/** A hue (0–360) for the peer's avatar. */
export function peerHue(peerId) {
  return HUES[hash(String(peerId)) % HUES.length];
}

/** Initials of the label, for the avatar shown when the camera is off. */
export function peerInitials(peerId) {
  return peerLabel(peerId).split(" ").map((w) => w[0]).join("");
}
