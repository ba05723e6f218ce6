// One RTCPeerConnection to one remote participant, negotiated with the "perfect
// negotiation" pattern (W3C WebRTC 1.0 §10.7): either side may renegotiate at any time,
// collisions are resolved by the polite side rolling back. Restarts ICE when it fails; a
// connection through a relay first asks rooms for fresh ICE servers (the relay may be dead:
// rooms then hands out another one) and restarts at once when they changed.

import { Emitter } from "./events.js";

const DISCONNECTED_GRACE_MS = 4000;
const RESTART_BACKOFF_MS = 3000; // the polite side's extra wait before it restarts ICE
const OFFER_WAIT_MS = 3000; // how long the non-initiator waits for the first offer
const WATCHDOG_MS = 12_000; // restart ICE if still not connected this long after a start
const MAX_PENDING_CANDIDATES = 200;
const REFRESH_POLL_MS = 1000; // while disconnected via a relay: ask rooms again this often
const POLITE_MOVE_WAIT_MS = 1500; // the polite side's wait for the other's restart offer
const MAX_ICE_LOG = 50;

/** The TURN URLs of an RTCConfiguration's iceServers, as one comparable string. */
export function turnUrls(iceServers) {
  const urls = [];
  for (const server of iceServers || []) {
    for (const url of [].concat(server.urls || [])) {
      if (/^turns?:/.test(url)) urls.push(url);
    }
  }
  return urls.sort().join(" ");
}

/** The `a=ice-ufrag` of a session description (the first one), or null. */
export function iceUfrag(sdp) {
  const found = /^a=ice-ufrag:(\S+)/m.exec(sdp || "");
  return found ? found[1] : null;
}

/**
 * A negotiated connection to `remoteId`.
 *
 * Events: "track" (MediaStream of the remote audio/video, same object every time),
 * "state" ("new" | "connecting" | "connected" | "reconnecting" | "failed" | "closed").
 */
export class PeerLink extends Emitter {
  /**
   * @param {object} o
   * @param {string} o.localId   my peer id
   * @param {string} o.remoteId  theirs
   * @param {RTCConfiguration} o.config
   * @param {(data: object) => void} o.sendSignal  sends `data` to the remote peer
   * @param {{audio: MediaStreamTrack|null, video: MediaStreamTrack|null}} o.tracks
   * @param {boolean} o.initiator  true on the newcomer's side: it sends the first offer
   * @param {() => Promise<unknown>} [o.refreshIce]  asks rooms for fresh ICE servers and
   *   applies them to this connection (`setIceServers`); rejects when rooms cannot answer
   */
  constructor({ localId, remoteId, config, sendSignal, tracks, initiator = false,
    refreshIce = null }) {
    super();
    this.remoteId = remoteId;
    this.polite = localId < remoteId; // docs/signaling.md "Roles"
    this.pc = new RTCPeerConnection(config);
    this.remoteStream = new MediaStream();
    this.state = "new";
    this.iceRestarts = 0; // counted for the usage beacon (coarse: 0, 1, 2+)
    this._send = sendSignal;
    this._makingOffer = false;
    this._ignoreOffer = false;
    this._settingRemoteAnswer = false;
    this._pendingCandidates = [];
    this._chain = Promise.resolve();
    this._localStream = new MediaStream();
    this._senders = { audio: null, video: null };
    this._disconnectTimer = null;
    this._offerTimer = null;
    this._watchdog = null;
    this._tracksAttached = false;
    this._closed = false;
    this._refreshIce = refreshIce;
    this._recovering = false;
    this._relayed = false; // the selected candidate pair went through a relay
    this._gatheredWith = turnUrls(config.iceServers); // the relays of the last gathering
    this.iceLog = []; // [Date.now(), iceConnectionState], for the test hooks

    const pc = this.pc;
    pc.onnegotiationneeded = () => this._negotiate();
    pc.onicecandidate = ({ candidate }) => {
      this._send({ candidate: candidate ? candidate.toJSON() : null });
    };
    pc.ontrack = ({ track }) => this._addRemoteTrack(track);
    pc.oniceconnectionstatechange = () => this._onIceState();
    pc.onconnectionstatechange = () => this._updateState();

    // Who offers first. Both sides offering at once at the start (glare) is legal under
    // perfect negotiation, but Chromium then loses the polite side's ICE candidates after
    // its rollback, and the call never connects. So only the initiator (the newcomer)
    // offers; the other side adds its tracks while answering that offer, or offers itself
    // if none has come after a while.
    this._pendingTracks = { ...tracks };
    if (initiator) {
      this._attachTracks({ recvonlyIfNone: true });
    } else {
      this._offerTimer = setTimeout(() => this._attachTracks({ recvonlyIfNone: true }), OFFER_WAIT_MS);
    }
    this._armWatchdog();
  }

  /**
   * Send `track` as our `kind` ("audio" | "video") media, or stop sending with null.
   * Reuses the existing sender (replaceTrack, no renegotiation) when there is one, else
   * adds a track, which renegotiates (e.g. a receive-only participant who starts sharing
   * their screen).
   */
  async setTrack(kind, track) {
    if (this._closed) return;
    if (!this._tracksAttached) {
      this._pendingTracks[kind] = track;
      return;
    }
    const sender = this._senders[kind];
    if (sender) {
      await sender.replaceTrack(track);
      return;
    }
    if (!track) return;
    this._senders[kind] = this.pc.addTrack(track, this._localStream);
  }

  /** Handle a `signal` message's data from the remote peer (serialised, in order). */
  handleSignal(data) {
    this._chain = this._chain.then(() => this._handleSignal(data)).catch((err) => {
      console.warn(`parley: signal from ${this.remoteId} failed`, err);
    });
    return this._chain;
  }

  /** Gather fresh candidates and renegotiate (RFC 8445 §9 ICE restart). */
  restartIce() {
    if (this._closed) return;
    if (!this._tracksAttached) this._attachTracks({ recvonlyIfNone: true });
    this.iceRestarts += 1;
    this._gatheredWith = turnUrls(this.pc.getConfiguration().iceServers);
    this.pc.restartIce();
    this._armWatchdog();
  }

  /**
   * Use `iceServers` from the next gathering on (an ICE restart); the candidates in use
   * stay until then (W3C WebRTC 1.0 §4.4.1.6, setConfiguration).
   */
  setIceServers(iceServers) {
    if (this._closed) return;
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch (err) {
      console.warn(`parley: new ICE servers for ${this.remoteId} refused`, err);
    }
  }

  /** Whether this connection goes (or must go) through a relay. */
  get viaRelay() {
    return this.pc.getConfiguration().iceTransportPolicy === "relay" || this._relayed;
  }

  /** Close the connection and stop everything it received. */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._disconnectTimer);
    clearTimeout(this._offerTimer);
    clearTimeout(this._watchdog);
    this.pc.onnegotiationneeded = null;
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.oniceconnectionstatechange = null;
    this.pc.onconnectionstatechange = null;
    for (const track of this.remoteStream.getTracks()) track.stop();
    this.pc.close();
    this._setState("closed");
  }

  // --- perfect negotiation ---------------------------------------------------------------

  async _negotiate() {
    if (this._closed) return;
    try {
      this._makingOffer = true;
      await this.pc.setLocalDescription();
      // A remote offer may have rolled ours back meanwhile: then there is nothing to send.
      if (this.pc.signalingState !== "have-local-offer") return;
      this._send({ description: this.pc.localDescription.toJSON() });
    } catch (err) {
      console.warn(`parley: offer to ${this.remoteId} failed`, err);
    } finally {
      this._makingOffer = false;
    }
  }

  async _handleSignal({ description, candidate }) {
    if (this._closed) return;
    const pc = this.pc;
    if (description) {
      // An offer collides when we are making one, or are not stable and not just about to
      // apply an answer (W3C WebRTC 1.0 §10.7).
      const readyForOffer =
        !this._makingOffer && (pc.signalingState === "stable" || this._settingRemoteAnswer);
      const collision = description.type === "offer" && !readyForOffer;
      this._ignoreOffer = !this.polite && collision;
      if (this._ignoreOffer) return;
      if (description.type === "offer" && this.viaRelay && this._refreshIce &&
          pc.remoteDescription && iceUfrag(description.sdp) !== iceUfrag(pc.remoteDescription.sdp)) {
        // The other side restarts ICE: its relay may be gone, and then ours too. Gather
        // with the room's current relay, not the one this connection began with.
        await this._refreshIce().catch(() => {});
        this._gatheredWith = turnUrls(pc.getConfiguration().iceServers);
      }
      this._settingRemoteAnswer = description.type === "answer";
      try {
        await pc.setRemoteDescription(description); // rolls back our offer if polite
      } finally {
        this._settingRemoteAnswer = false;
      }
      await this._flushCandidates();
      if (description.type === "offer") {
        // Our tracks join the transceivers the offer created: one round trip, no glare.
        if (!this._tracksAttached) this._attachTracks({ recvonlyIfNone: false });
        await pc.setLocalDescription();
        this._send({ description: pc.localDescription.toJSON() });
      }
      return;
    }
    if (candidate === undefined) return;
    if (!pc.remoteDescription) {
      if (this._pendingCandidates.length < MAX_PENDING_CANDIDATES) {
        this._pendingCandidates.push(candidate);
      }
      return;
    }
    await this._addCandidate(candidate);
  }

  async _flushCandidates() {
    const pending = this._pendingCandidates.splice(0);
    for (const candidate of pending) await this._addCandidate(candidate);
  }

  async _addCandidate(candidate) {
    try {
      // null means end-of-candidates for this generation.
      await this.pc.addIceCandidate(candidate ?? undefined);
    } catch (err) {
      if (!this._ignoreOffer && candidate) {
        console.warn(`parley: candidate from ${this.remoteId} rejected`, err);
      }
    }
  }

  // --- media and state ---------------------------------------------------------------

  _attachTracks({ recvonlyIfNone }) {
    if (this._tracksAttached || this._closed) return;
    this._tracksAttached = true;
    clearTimeout(this._offerTimer);
    const tracks = this._pendingTracks;
    for (const kind of ["audio", "video"]) {
      if (tracks[kind]) {
        this._senders[kind] = this.pc.addTrack(tracks[kind], this._localStream);
      } else if (recvonlyIfNone && this.pc.getTransceivers().every((t) => t.receiver.track.kind !== kind)) {
        // Nothing to send (yet): still ask to receive, so that an offer is made. A track
        // added later reuses this transceiver (RTCPeerConnection.addTrack, step 7).
        this.pc.addTransceiver(kind, { direction: "recvonly", streams: [this._localStream] });
      }
    }
  }

  /**
   * If the connection has not come up some time after it began (or after an ICE restart),
   * restart ICE once more: the impolite side first, the polite side later as a fallback, so
   * that the two rarely restart at once.
   */
  _armWatchdog() {
    clearTimeout(this._watchdog);
    const wait = this.polite ? WATCHDOG_MS * 1.6 : WATCHDOG_MS;
    this._watchdog = setTimeout(async () => {
      if (this._closed || this.pc.connectionState === "connected") return;
      console.info(`parley: connection to ${this.remoteId} is slow to come up; restarting ICE`);
      if (this.viaRelay && this._refreshIce) await this._refreshIce().catch(() => {});
      this.restartIce();
    }, wait);
  }

  _addRemoteTrack(track) {
    const stream = this.remoteStream;
    for (const old of stream.getTracks()) {
      if (old.kind === track.kind && old !== track) stream.removeTrack(old);
    }
    if (!stream.getTracks().includes(track)) stream.addTrack(track);
    this.emit("track", stream);
  }

  _onIceState() {
    const ice = this.pc.iceConnectionState;
    this.iceLog.push([Date.now(), ice]);
    if (this.iceLog.length > MAX_ICE_LOG) this.iceLog.shift();
    clearTimeout(this._disconnectTimer);
    if ((ice === "failed" || ice === "disconnected") && this.viaRelay && this._refreshIce) {
      this._recover();
    } else if (ice === "failed" || ice === "disconnected") {
      // "disconnected" often recovers by itself (a burst of lost packets). Only one side
      // restarts at first (the impolite one), the other later if still needed: two restarts
      // at once collide (see the constructor).
      const wait = (ice === "failed" ? 0 : DISCONNECTED_GRACE_MS) + (this.polite ? RESTART_BACKOFF_MS : 0);
      this._disconnectTimer = setTimeout(() => {
        const now = this.pc.iceConnectionState;
        if (now === "failed" || now === "disconnected") this.restartIce();
      }, wait);
    } else if (ice === "connected" || ice === "completed") {
      clearTimeout(this._watchdog);
      this._noteRelay();
    }
    this._updateState();
  }

  /**
   * ICE failed or is disconnected on a relayed connection: ask rooms for fresh ICE servers
   * (again every second while it lasts). When they name another relay (rooms saw ours stop
   * answering), restart at once: the impolite side does; the polite one gives the other's
   * restart offer (which it answers on the new relay too) 1.5 s to come, since the other
   * side may not have noticed yet. Otherwise restart after the usual grace, with fresh
   * credentials.
   */
  async _recover() {
    if (this._recovering) return;
    this._recovering = true;
    const began = Date.now();
    let movedAt = null;
    const troubled = () => ["failed", "disconnected"].includes(this.pc.iceConnectionState);
    try {
      while (!this._closed && troubled()) {
        await this._refreshIce().catch(() => {}); // rooms unreachable: restart all the same
        if (this._closed || !troubled()) return;
        // (answering the other side's restart offer gathers on the new relay: not "moved")
        const moved = turnUrls(this.pc.getConfiguration().iceServers) !== this._gatheredWith;
        movedAt = moved ? movedAt ?? Date.now() : null;
        const grace = (this.pc.iceConnectionState === "failed" ? 0 : DISCONNECTED_GRACE_MS) +
          (this.polite ? RESTART_BACKOFF_MS : 0);
        if ((moved && (!this.polite || Date.now() - movedAt >= POLITE_MOVE_WAIT_MS)) ||
            Date.now() - began >= grace) {
          console.info(`parley: ICE to ${this.remoteId} ${moved ? "moves to another relay" : "restarts"}`);
          this.restartIce();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, moved ? 250 : REFRESH_POLL_MS));
      }
    } finally {
      this._recovering = false;
    }
  }

  /** Remember whether the selected candidate pair is relayed (it decides the recovery). */
  async _noteRelay() {
    try {
      const stats = await this.pc.getStats();
      let pair = null;
      stats.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      });
      if (!pair) return;
      const types = [stats.get(pair.localCandidateId), stats.get(pair.remoteCandidateId)]
        .map((c) => c && c.candidateType);
      this._relayed = types.includes("relay");
    } catch {
      /* closed meanwhile */
    }
  }

  _updateState() {
    if (this._closed) return;
    const c = this.pc.connectionState;
    const ice = this.pc.iceConnectionState;
    let state;
    if (c === "connected" && ice !== "disconnected") state = "connected";
    else if (c === "failed" || ice === "failed") state = "failed";
    else if (c === "disconnected" || ice === "disconnected") state = "reconnecting";
    else if (c === "closed") state = "closed";
    else if (this.state === "connected" || this.state === "reconnecting") state = "reconnecting";
    else state = "connecting";
    this._setState(state);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }
}
