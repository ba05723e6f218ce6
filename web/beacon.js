// The usage beacon: one anonymous, coarse summary per call session (docs/metrics.md), built
// from what the call saw and sent once with navigator.sendBeacon, unless the browser (Global
// Privacy Control, Do Not Track) or the user ("Send anonymous usage statistics") said not to.

import { settings } from "./settings.js";

// A connection not up this long after it began failed to connect: longer than every
// recovery the client tries by itself (ICE restarts at 0–7 s after a failure, watchdogs at
// 12 s and 19 s), so a connection that recovers counts as a success with its restarts.
const CONNECT_DEADLINE_MS = 30_000;
const NONCE_BYTES = 24; // 32 characters of base64url; the schema allows 16–64
const CANDIDATE_TYPES = new Set(["host", "srflx", "prflx", "relay"]);
const PROTOCOLS = new Set(["udp", "tcp"]);
const RELAY_PROTOCOLS = new Set(["udp", "tcp", "tls"]);

/**
 * Whether this browser may send a usage summary, and if not, why (the /privacy page shows
 * the same answer). Global Privacy Control and Do Not Track win over the user's setting.
 */
export function beaconsAllowed(nav = navigator, win = globalThis) {
  if (nav.globalPrivacyControl === true) return { ok: false, why: "Global Privacy Control is on" };
  if (nav.doNotTrack === "1" || win.doNotTrack === "1") return { ok: false, why: "Do Not Track is on" };
  if (!settings.sendUsageStats) return { ok: false, why: "you turned off anonymous usage statistics" };
  return { ok: true, why: "" };
}

/** A fresh random nonce: `[A-Za-z0-9_-]`, 32 characters (base64url of 24 random bytes). */
export function newNonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

/** The schema's coarse buckets: exact counts never leave the browser. */
export const bucket = {
  muteToggles: (n) => (n <= 0 ? "0" : n <= 2 ? "1-2" : "3+"),
  duration: (ms) => {
    const min = ms / 60_000;
    return min < 1 ? "<1m" : min < 5 ? "1-5m" : min < 15 ? "5-15m" : min < 60 ? "15-60m" : "60m+";
  },
  peers: (n) => (n <= 1 ? "1" : n === 2 ? "2" : n <= 4 ? "3-4" : "5+"),
  iceRestarts: (n) => (n <= 0 ? "0" : n === 1 ? "1" : "2+"),
};

/**
 * The selected candidate pair of `pc` as beacon fields (types and protocols, never an
 * address), or null when there is none. From getStats(): the transport's selected pair,
 * else a nominated, succeeded pair.
 */
export async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) {
    stats.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    });
  }
  const local = pair && stats.get(pair.localCandidateId);
  const remote = pair && stats.get(pair.remoteCandidateId);
  if (!local || !CANDIDATE_TYPES.has(local.candidateType)) return null;
  const out = { local_candidate: local.candidateType };
  if (remote && CANDIDATE_TYPES.has(remote.candidateType)) out.remote_candidate = remote.candidateType;
  if (PROTOCOLS.has(local.protocol)) out.protocol = local.protocol;
  if (local.candidateType === "relay" && RELAY_PROTOCOLS.has(local.relayProtocol)) {
    out.relay_protocol = local.relayProtocol;
  }
  return out;
}

/** RTP packets received on `pc` so far (all inbound streams), from getStats(). */
async function packetsReceived(pc) {
  let n = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") n += s.packetsReceived || 0;
  });
  return n;
}

/**
 * The step at which `pc` is stuck, as best its state tells: no offer/answer exchanged
 * (signalling), no working candidate pair (ice), ICE up but no secure transport (dtls),
 * else connected without media.
 */
export function failureStage(pc) {
  if (!pc.currentRemoteDescription || !pc.currentLocalDescription) return "signalling";
  const ice = pc.iceConnectionState;
  if (ice !== "connected" && ice !== "completed") return "ice";
  const transport = [...pc.getSenders(), ...pc.getReceivers()].map((x) => x.transport).find(Boolean);
  if (pc.connectionState === "failed" || (transport && transport.state !== "connected")) return "dtls";
  return "media";
}

/** A Beacon (services/metrics/schema.py) from a session's usage; nothing else goes in. */
export function buildBeacon({ nonce, event, stage = null, pair = null, usage }) {
  const beacon = { v: 1, nonce, event };
  if (event === "connect-failure") beacon.failure_stage = stage;
  Object.assign(beacon, pair || {}, {
    screen_share: usage.screenShare,
    mute_toggles: bucket.muteToggles(usage.muteToggles),
    camera_off: usage.cameraOff,
    always_relay: usage.alwaysRelay,
    via_server: Boolean(usage.viaServer),
    duration: bucket.duration(usage.durationMs),
    peers: bucket.peers(usage.peers),
    ice_restarts: bucket.iceRestarts(usage.iceRestarts),
  });
  return beacon;
}

/**
 * Watches one call session and sends its single beacon: "connect-failure" as soon as a
 * connection fails to come up, else "session-end" when the call ends (Leave, or the
 * `pagehide` that ends it). Sessions in which nobody else ever joined send nothing (there
 * was no connection to describe, and the schema counts at least one other participant).
 */
export class SessionBeacon {
  /**
   * @param {import("./call.js").Call} call  a joined call
   * @param {object} o
   * @param {string} o.metricsUrl  the metrics service (config.json `metrics_url`)
   */
  constructor(call, { metricsUrl }) {
    this.call = call;
    this.url = `${metricsUrl.replace(/\/+$/, "")}/beacon`;
    this.nonce = newNonce();
    this.sent = false;
    this._started = performance.now();
    this._links = new Map(); // peer id -> {link, connected, timer}
    this._allLinks = new Set(); // every PeerLink of the session, for its ICE restarts
    this._pair = null; // the latest selected pair seen
    this._mostPeers = 0;
    this._muteToggles = 0;
    this._micOn = call.media.micOn;
    this._sharing = false;
    this._cameraOff = false;
    this._offs = [
      call.on("peer-added", ({ id }) => this._track(id)),
      call.on("peer-removed", ({ id }) => this._untrack(id)),
      call.on("peer-state", ({ id, state }) => this._onState(id, state)),
      call.on("ended", () => this._onEnded()),
      call.media.on("change", () => this._onMedia()),
    ];
    this._onMedia();
    for (const [id, { link }] of call.peers) {
      this._track(id);
      this._onState(id, link.state);
    }
  }

  // --- what the session saw -------------------------------------------------------------

  _track(id) {
    const peer = this.call.peers.get(id);
    if (!peer || this._links.has(id)) return;
    const entry = { link: peer.link, connected: false, timer: null };
    entry.timer = setTimeout(() => this._checkConnected(id), CONNECT_DEADLINE_MS);
    this._links.set(id, entry);
    this._allLinks.add(peer.link);
    this._mostPeers = Math.max(this._mostPeers, this.call.peers.size);
  }

  _untrack(id) {
    const entry = this._links.get(id);
    if (entry) clearTimeout(entry.timer);
    this._links.delete(id);
  }

  _onState(id, state) {
    if (this.call.mode === "sfu") this._viaServer = true;
    const entry = this._links.get(id);
    if (!entry || state !== "connected") return;
    entry.connected = true;
    // Sampled now, while the connection is up: at pagehide there is no time for getStats.
    const current = this.call.peers.get(id);
    const pc = (current && current.link.pc) || entry.link.pc;
    if (pc) selectedPair(pc).then((pair) => { if (pair) this._pair = pair; }, () => {});
  }

  _onMedia() {
    const media = this.call.media;
    if (media.micOn !== this._micOn) this._muteToggles += 1;
    this._micOn = media.micOn;
    this._sharing ||= media.sharing;
    // Off by choice: a camera that is missing or denied is not "turned off".
    this._cameraOff ||= !media.cameraOn && !media.problems.video;
  }

  async _checkConnected(id) {
    const entry = this._links.get(id);
    if (!entry || this.sent || this.call.ended) return;
    const current = this.call.peers.get(id);
    const pc = (current && current.link.pc) || entry.link.pc;
    if (!pc) return;
    if (!entry.connected) {
      this._send("connect-failure", failureStage(pc));
      return;
    }
    // Up, but nothing received although the other side says it sends: media failed.
    const peer = this.call.peers.get(id);
    const announced = peer && (peer.media.audio || peer.media.video || peer.media.screen);
    try {
      if (announced && (await packetsReceived(pc)) === 0 && !this.call.ended) {
        this._send("connect-failure", "media");
      }
    } catch {
      // closed meanwhile: nothing to judge
    }
  }

  _onEnded() {
    // A connection that had already failed for good when the call ended is a failure too.
    const stuck = [...this._links.values()].find((e) => !e.connected && e.link.state === "failed");
    if (stuck) this._send("connect-failure", failureStage(stuck.link.pc));
    else this._send("session-end");
    this._stop();
  }

  _stop() {
    for (const off of this._offs.splice(0)) off();
    for (const entry of this._links.values()) clearTimeout(entry.timer);
  }

  // --- sending --------------------------------------------------------------------------

  /** Send this session's beacon, at most once, and only when allowed. */
  _send(event, stage = null) {
    if (this.sent) return;
    this.sent = true;
    if (this._mostPeers === 0 || !beaconsAllowed().ok) return;
    const restarts = [...this._allLinks].reduce((n, link) => n + ((link && link.iceRestarts) || 0), 0);
    const beacon = buildBeacon({
      nonce: this.nonce,
      event,
      stage,
      pair: event === "session-end" || stage === "media" ? this._pair : null,
      usage: {
        screenShare: this._sharing,
        muteToggles: this._muteToggles,
        cameraOff: this._cameraOff,
        alwaysRelay: this.call.rtcConfig.iceTransportPolicy === "relay",
        viaServer: this._viaServer || this.call.mode === "sfu",
        durationMs: performance.now() - this._started,
        peers: this._mostPeers,
        iceRestarts: restarts,
      },
    });
    try {
      // A text/plain body: no CORS preflight, and it survives the page going away.
      navigator.sendBeacon(this.url, JSON.stringify(beacon));
    } catch (err) {
      console.warn("parley: usage beacon", err);
    }
  }
}
