// Names: the one a person chose (or drew at random on the pre-join screen), the friendly
// fallback derived from a peer id ("Teal Heron", the same on every page), the cleaning
// rule (the same as the signalling server's), and labels made unique within the room.

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

export const MAX_NAME_LENGTH = 40;

/** A random friendly name ("Jade Otter"): the default on the pre-join screen. */
export function randomName() {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return `${COLOURS[a % COLOURS.length]} ${ANIMALS[b % ANIMALS.length]}`;
}

/**
 * A name as the room will see it: no control, zero-width or bidi marks, spaces collapsed,
 * at most 40 characters (services/signaling/protocol.py `clean_display_name`).
 */
export function cleanName(raw) {
  const text = String(raw || "").normalize("NFC")
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g, "")
    .split(/\s+/).filter(Boolean).join(" ");
  return text.slice(0, MAX_NAME_LENGTH).trim();
}

/**
 * Labels unique within the room: `names` maps peer id (or "self") → chosen name (or "" for
 * none: the id's friendly label). Equal names get " (2)", " (3)"… in peer-id order, so every
 * page numbers them alike. Returns a Map id → label.
 */
export function uniqueLabels(names, selfId = "self") {
  const byLabel = new Map();
  for (const [id, name] of names) {
    const base = cleanName(name) || peerLabel(id === "self" ? selfId : id);
    const key = base.toLocaleLowerCase();
    if (!byLabel.has(key)) byLabel.set(key, []);
    byLabel.get(key).push({ id, base, order: id === "self" ? selfId : id });
  }
  const out = new Map();
  for (const group of byLabel.values()) {
    group.sort((x, y) => (x.order < y.order ? -1 : x.order > y.order ? 1 : 0));
    group.forEach(({ id, base }, i) => out.set(id, i === 0 ? base : `${base} (${i + 1})`));
  }
  return out;
}

/** Initials of a label ("Ada Lovelace (2)" → "AL"). */
export function initialsOf(label) {
  return String(label).replace(/\(\d+\)$/, "").trim().split(/\s+/).slice(0, 2)
    .map((w) => [...w][0] || "").join("").toUpperCase() || "?";
}

/** A hue (0–360) for the peer's avatar. */
export function peerHue(peerId) {
  return HUES[hash(String(peerId)) % HUES.length];
}

/** Initials of the label, for the avatar shown when the camera is off. */
export function peerInitials(peerId) {
  return peerLabel(peerId).split(" ").map((w) => w[0]).join("");
}
