// User settings remembered in this browser (localStorage), nothing else is stored.

const PREFIX = "parley.";
const DEFAULTS = Object.freeze({
  alwaysRelay: false, // "Always relay (hides my IP address from others)"
  micOn: true,
  cameraOn: true,
  sendUsageStats: true, // "Send anonymous usage statistics" (the /privacy page reads it too)
  displayName: "", // "Your name" on the pre-join screen ("" until first chosen or drawn)
  micId: null, // the microphone picked last (a deviceId, preferred when present)
  cameraId: null, // the camera picked last
});

function read(key) {
  try {
    const raw = localStorage.getItem(PREFIX + key);
    return raw === null ? DEFAULTS[key] : JSON.parse(raw);
  } catch {
    return DEFAULTS[key];
  }
}

function write(key, value) {
  try {
    localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    // Private mode or storage disabled: the setting lasts for this page only.
  }
}

export const settings = {
  get alwaysRelay() { return Boolean(read("alwaysRelay")); },
  set alwaysRelay(v) { write("alwaysRelay", Boolean(v)); },
  get micOn() { return Boolean(read("micOn")); },
  set micOn(v) { write("micOn", Boolean(v)); },
  get cameraOn() { return Boolean(read("cameraOn")); },
  set cameraOn(v) { write("cameraOn", Boolean(v)); },
  // Off only when stored as JSON `false`: an unreadable value keeps the default.
  get sendUsageStats() { return read("sendUsageStats") !== false; },
  set sendUsageStats(v) { write("sendUsageStats", Boolean(v)); },
  get displayName() { const v = read("displayName"); return typeof v === "string" ? v : ""; },
  set displayName(v) { write("displayName", String(v)); },
  get micId() { const v = read("micId"); return typeof v === "string" ? v : null; },
  set micId(v) { write("micId", v || null); },
  get cameraId() { const v = read("cameraId"); return typeof v === "string" ? v : null; },
  set cameraId(v) { write("cameraId", v || null); },
};

/**
 * The ICE transport policy for a call: "relay" when the user asked for it, when the server
 * forces it for everyone (config `force_relay`), or when the join answer says so.
 */
export function iceTransportPolicy({ forceRelay = false, joinPolicy = "all" } = {}) {
  return settings.alwaysRelay || forceRelay || joinPolicy === "relay" ? "relay" : "all";
}
