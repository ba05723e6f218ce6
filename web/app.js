// Entry point: reads /config.json, routes "/" to the landing page and "/{room}" to the
// pre-join then the call, and exposes the `window.parley` hooks (used by the e2e tests).

import * as api from "./api.js";
import { SessionBeacon } from "./beacon.js";
import { $, showView, toast } from "./ui/dom.js";
import { showCall } from "./ui/callview.js";
import { showLanding } from "./ui/landing.js";
import { showPrejoin } from "./ui/prejoin.js";

let currentCall = null;

/** Hooks that stay in the product: what the e2e tests (and curious people) can inspect. */
window.parley = Object.freeze({
  /** Live RTCPeerConnections by remote peer id. */
  connections: () => (currentCall && !currentCall.ended ? currentCall.connections() : {}),
  /** My peer id, or null before joining. */
  peerId: () => (currentCall ? currentCall.peerId : null),
  /** Where this page signals and how it connects (no secrets). */
  info: () => currentCall && {
    room: currentCall.room,
    peerId: currentCall.peerId,
    signalingUrl: currentCall.signaling && currentCall.signaling.url,
    signalingState: currentCall.signaling && currentCall.signaling.state,
    iceTransportPolicy: currentCall.rtcConfig.iceTransportPolicy,
    owner: currentCall.isOwner,
  },
  /** Each connection's ICE states with their times ([Date.now(), state]), by peer id. */
  iceLog: () => {
    const out = {};
    if (currentCall) for (const [id, { link }] of currentCall.peers) out[id] = [...link.iceLog];
    return out;
  },
});

function roomFromPath() {
  const path = location.pathname.replace(/^\/+|\/+$/g, "");
  if (!path) return null;
  try {
    return decodeURIComponent(path.split("/")[0]).normalize("NFKC").toLowerCase();
  } catch {
    return path.split("/")[0];
  }
}

async function main() {
  let config = {};
  try {
    config = (await api.getConfig()) || {};
  } catch (err) {
    console.warn("parley: /config.json", err);
  }
  if (config.version) $("version").textContent = config.version;
  // The footer says plainly when this server collects anonymous usage statistics.
  $("stats-note").hidden = !config.metrics_url;
  $("stats-dot").hidden = !config.metrics_url;

  const room = roomFromPath();
  if (!room) {
    showLanding();
    return;
  }
  document.title = `${room} · Parley`;
  if (!window.RTCPeerConnection) {
    showView("ended");
    $("ended-title").textContent = "This browser cannot make video calls";
    $("ended-message").textContent = "Try a current version of Firefox, Chrome, Edge or Safari.";
    $("rejoin-link").hidden = true;
    return;
  }
  currentCall = await showPrejoin({ room, config });
  if (config.metrics_url) new SessionBeacon(currentCall, { metricsUrl: config.metrics_url });
  showCall(currentCall);
}

main().catch((err) => {
  console.error("parley:", err);
  toast(`Something went wrong: ${err.message}`, { kind: "error", ms: 10000 });
});
