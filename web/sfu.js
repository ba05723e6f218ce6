// The call path through Parley's SFU (docs/sfu.md): one RTCPeerConnection to the server,
// my camera and microphone sent once, everyone else received through fixed receive slots.
// The server chooses this path; call.js drives it behind the same UI as the mesh.

import { Emitter } from "./events.js";

const ANSWER_TIMEOUT_MS = 10_000;
export const FAILOVER_AFTER_MS = 3000; // "disconnected" this long counts as a lost SFU

/** Only the codec the SFU forwards (Opus, VP8), so the offer stays small. */
function preferCodecs(transceiver, kind) {
  const want = kind === "audio" ? "audio/opus" : "video/vp8";
  try {
    const caps = RTCRtpReceiver.getCapabilities(kind);
    const codecs = caps.codecs.filter((c) => c.mimeType.toLowerCase() === want);
    if (codecs.length) transceiver.setCodecPreferences(codecs);
  } catch {
    /* an old browser: the SFU picks its codec from the full list */
  }
}

/**
 * The offer as the SFU needs it: no candidates (the SFU is ICE-lite and learns our address
 * from our checks) and no header extensions (it negotiates none): a third of the size.
 */
export function compactOffer(sdp) {
  return sdp.split("\r\n").filter((line) =>
    !line.startsWith("a=candidate:") && !line.startsWith("a=extmap:")).join("\r\n");
}

/**
 * One participant's connection to the room's SFU.
 *
 * Events: "state" ("connecting" | "connected" | "reconnecting" | "failed" | "closed"),
 * "stream" ({peerId, stream}) when a person's slot has media to show.
 */
export class SfuConnection extends Emitter {
  /**
   * @param {object} o
   * @param {RTCConfiguration} o.config       ICE servers and policy ("always relay")
   * @param {number} o.slots                  receive slots (room capacity - 1)
   * @param {(msg: object) => void} o.send    sends a signalling message
   * @param {{audio: MediaStreamTrack|null, video: MediaStreamTrack|null}} o.tracks
   */
  constructor({ config, slots, send, tracks }) {
    super();
    this.pc = new RTCPeerConnection({ ...config, bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    this.state = "connecting";
    this.iceRestarts = 0;
    this._send = send;
    this._pending = null; // {resolve, reject, timer} of the request in flight
    this._closed = false;
    this._local = new MediaStream();
    this._senders = {};
    for (const kind of ["audio", "video"]) {
      const t = this.pc.addTransceiver(tracks[kind] || kind, { direction: "sendonly", streams: [this._local] });
      preferCodecs(t, kind);
      this._senders[kind] = t.sender;
    }
    this.slots = [];
    for (let i = 0; i < slots; i += 1) {
      const audio = this.pc.addTransceiver("audio", { direction: "recvonly" });
      const video = this.pc.addTransceiver("video", { direction: "recvonly" });
      preferCodecs(audio, "audio");
      preferCodecs(video, "video");
      this.slots.push({ audio, video, peerId: null, stream: null });
    }
    this.pc.onconnectionstatechange = () => this._updateState();
    this.pc.oniceconnectionstatechange = () => this._updateState();
  }

  /** Offer, send it through signalling to the SFU, apply its answer. `mapping`: who each
   * slot shows, as of now (a later `subscribe` changes what the offer carries). */
  async start(ticket, mapping) {
    this.ticket = ticket;
    this._map = mapping;
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const sdp = compactOffer(this.pc.localDescription.sdp);
    this._offered = true;
    const reply = await this._request(() => ({ description: { type: "offer", sdp }, subscribe: this._map }));
    if (this._closed) return;
    await this.pc.setRemoteDescription(reply.description);
  }

  /** Tell the SFU which person each slot shows (the whole map, sent after the offer). */
  async subscribe(mapping) {
    this._map = mapping;
    if (this._closed || !this._offered) return; // the offer will carry it
    await this._request(() => ({ subscribe: this._map }));
  }

  /** A reply from signalling: `{type: "sfu", ...}` or an `error` whose ref is "sfu". */
  onReply(msg) {
    const pending = this._pending;
    if (!pending) return;
    this._pending = null;
    clearTimeout(pending.timer);
    if (msg.type === "error") pending.reject(new Error(msg.message || "the SFU is unavailable"));
    else pending.resolve(msg);
  }

  _request(makeBody) {
    // one at a time: a slot map sent while an offer waits goes after it, as it is by then
    const run = () => new Promise((resolve, reject) => {
      if (this._closed) {
        reject(new Error("closed"));
        return;
      }
      const body = makeBody();
      const timer = setTimeout(() => {
        this._pending = null;
        reject(new Error("the SFU did not answer"));
      }, ANSWER_TIMEOUT_MS);
      this._pending = { resolve, reject, timer };
      this._send({ type: "sfu", ticket: this.ticket, ...body });
    });
    this._chain = (this._chain || Promise.resolve()).catch(() => {}).then(run);
    return this._chain;
  }

  /** Show `peerId` in slot `index` (or nobody with null): a fresh stream for the tile. */
  setSlot(index, peerId) {
    const slot = this.slots[index];
    if (!slot || slot.peerId === peerId) return;
    slot.peerId = peerId;
    slot.stream = peerId ? new MediaStream([slot.audio.receiver.track, slot.video.receiver.track]) : null;
    if (peerId) this.emit("stream", { peerId, stream: slot.stream });
  }

  /** Send `track` as my `kind` (camera, screen, microphone) without renegotiating. */
  async setTrack(kind, track) {
    const sender = this._senders[kind];
    if (sender && !this._closed) await sender.replaceTrack(track);
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._lostTimer);
    if (this._pending) {
      clearTimeout(this._pending.timer);
      this._pending.reject(new Error("closed"));
      this._pending = null;
    }
    this.pc.onconnectionstatechange = null;
    this.pc.oniceconnectionstatechange = null;
    this.pc.close();
    this._setState("closed");
  }

  _updateState() {
    if (this._closed) return;
    const c = this.pc.connectionState;
    const ice = this.pc.iceConnectionState;
    clearTimeout(this._lostTimer);
    let state;
    if (c === "connected" && ice !== "disconnected") state = "connected";
    else if (c === "failed" || ice === "failed") state = "failed";
    else if (c === "disconnected" || ice === "disconnected") state = "reconnecting";
    else state = this.state === "connected" ? "reconnecting" : "connecting";
    if (state === "reconnecting") {
      // The SFU is ICE-lite: it never restarts anything; a lasting silence means it is gone.
      this._lostTimer = setTimeout(() => this._setState("failed"), FAILOVER_AFTER_MS);
    }
    this._setState(state);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }
}

/**
 * What call.js keeps per remote person on the SFU path: PeerLink's shape (pc, state,
 * events "track" and "state"), backed by the shared SfuConnection.
 */
export class SfuPeerLink extends Emitter {
  constructor(remoteId, sfu) {
    super();
    this.remoteId = remoteId;
    this.state = "connecting";
    this.iceRestarts = 0;
    this._sfu = null;
    this._offs = [];
    this.attach(sfu);
  }

  get pc() {
    return this._sfu ? this._sfu.pc : null;
  }

  /** This person's audio and video (an empty stream until they have a slot). */
  get remoteStream() {
    const slot = this._sfu && this._sfu.slots.find((s) => s.peerId === this.remoteId);
    if (slot && slot.stream) return slot.stream;
    this._empty = this._empty || new MediaStream();
    return this._empty;
  }

  /** Follow a (new) SFU connection: failover replaces it under the same link. */
  attach(sfu) {
    for (const off of this._offs.splice(0)) off();
    this._sfu = sfu;
    if (!sfu) return;
    this._offs.push(sfu.on("state", (s) => this._setState(s)));
    this._offs.push(sfu.on("stream", ({ peerId, stream }) => {
      if (peerId === this.remoteId) this.emit("track", stream);
    }));
    const slot = sfu.slots.find((s) => s.peerId === this.remoteId);
    if (slot && slot.stream) queueMicrotask(() => this.emit("track", slot.stream));
    this._setState(sfu.state === "closed" ? "reconnecting" : sfu.state);
  }

  setTrack() { return Promise.resolve(); } // the SfuConnection sends my tracks once
  handleSignal() { return Promise.resolve(); } // no peer-to-peer signals on this path
  restartIce() {}

  close() {
    for (const off of this._offs.splice(0)) off();
    this._setState("closed");
  }

  _setState(state) {
    const mapped = state === "failed" ? "reconnecting" : state; // failover is automatic
    if (this.state === mapped) return;
    this.state = mapped;
    this.emit("state", mapped);
  }
}
