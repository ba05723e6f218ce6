// A call: joins through the rooms API, keeps the signalling socket, one PeerLink per remote
// participant (full mesh), their media state, and chat. The UI only listens and asks.

import * as api from "./api.js";
import { Emitter } from "./events.js";
import { PeerLink } from "./peer.js";
import { SfuConnection, SfuPeerLink } from "./sfu.js";
import { SignalingClient, SignalingError } from "./signaling.js";
import { iceTransportPolicy } from "./settings.js";

const CHAT_MAX = 2000;
// Close codes after which the way back is a new ticket from rooms (docs/signaling.md):
// token refused, resume grace over, or no longer a member of the room.
const REJOIN_CLOSE = new Set([4401, 4403, 4404, 4409]);
// What the server assumes of a peer that has not said otherwise (docs/signaling.md).
const DEFAULT_MEDIA = Object.freeze({ audio: true, video: true, screen: false });
// Signalling away this long (the socket keeps retrying meanwhile): the call is given up and
// the page offers to rejoin, instead of "Reconnecting…" for ever.
export const GIVE_UP_MS = 3 * 60 * 1000;
// Between tries to reach the room's SFU (a new ticket from rooms each time): after a lost
// SFU, rooms moves the room once the SFU's heartbeat is missed (docs/sfu.md, "Failover").
const SFU_RETRY_MS = [500, 1000, 1000, 2000, 2000, 3000];
// Fresh ICE servers fetched within this long serve every connection that asks again.
const ICE_REFRESH_REUSE_MS = 900;
const MAX_SEEN_CHAT = 1000; // chat line ids remembered to show each line once

/** A chat line id unique to this page: random, then a counter. */
function chatIdMaker() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  const prefix = Array.from(bytes, (b) => b.toString(36).padStart(2, "0")).join("");
  let n = 0;
  return () => `${prefix}-${(n += 1)}`;
}

/**
 * The owner key of `room` for this tab: rooms gives it only to the first peer, so keep it
 * (sessionStorage: this tab only, gone when it closes) and present it on the next join to
 * stay the owner across a reload; rooms answers with it while it is still the room's.
 */
function storedOwnerKey(room) {
  try {
    return sessionStorage.getItem(`parley.owner.${room}`);
  } catch {
    return null;
  }
}

function rememberOwnerKey(room, ownerKey) {
  try {
    if (ownerKey) sessionStorage.setItem(`parley.owner.${room}`, ownerKey);
    else sessionStorage.removeItem(`parley.owner.${room}`);
  } catch {
    /* storage unavailable: owner for this page only */
  }
  return ownerKey || null;
}

/**
 * Events for the UI:
 *  "joined" ({peerId, room, owner}), "peer-added" ({id}), "peer-removed" ({id, reason}),
 *  "peer-media" ({id, media}), "peer-stream" ({id, stream}), "peer-state" ({id, state}),
 *  "peer-name" ({id, name}), "chat" ({from, text, at, mine, queued, id}), "signaling" (state),
 *  "chat-acked" ({id}): my line reached the server; "chat-failed" ({id}): my line could not
 *  be sent (shown as "not sent", with Retry); "ended" ({reason, message}), "notice" (text),
 *  "lock" (locked), "ice-servers" (iceServers): fresh ones from rooms.
 *
 * Chat is delivered exactly once or marked not sent: every line has an id; the server
 * acknowledges it once published (`chat-ack`); a line not acknowledged is sent again after
 * the socket resumes (receivers show an id once); if the socket comes back as a new
 * participant (or never), the line is marked "not sent".
 */
export class Call extends Emitter {
  /**
   * @param {object} o
   * @param {string} o.room       room name from the URL
   * @param {object} o.config     GET /config.json
   * @param {import("./localmedia.js").LocalMedia} o.media
   * @param {string} [o.name]     my display name (sent to the room's members only)
   */
  constructor({ room, config, media, name = "" }) {
    super();
    this.room = room;
    this.name = name;
    this.config = config || {};
    this.media = media;
    this.peers = new Map(); // id -> {link: PeerLink, media, name}
    this.info = null; // the join answer
    this.peerId = null;
    this.signaling = null;
    this.password = null;
    this.locked = false;
    this.ended = false;
    this.mode = "mesh"; // or "sfu": through Parley's server (docs/sfu.md)
    this.sfu = null; // the SfuConnection on the SFU path
    this._sfuTries = 0;
    this._unsubscribe = [];
    this._offMedia = media.on("change", (tracks) => this._onLocalChange(tracks));
    this._iceRefresh = null; // {at, promise}: the last fetch of fresh ICE servers
    this._nextChatId = chatIdMaker();
    this._unacked = new Map(); // my chat line id -> {text, sent}, until the server acks it
    this._seenChat = new Set(); // `${from} ${id}` of lines shown, oldest first
  }

  get isOwner() {
    return Boolean(this.info && this.info.owner_key);
  }

  get rtcConfig() {
    return {
      iceServers: (this.info && this.info.ice_servers) || [],
      iceTransportPolicy: iceTransportPolicy({
        forceRelay: Boolean(this.config.force_relay),
        joinPolicy: this.info && this.info.ice_transport_policy,
      }),
      bundlePolicy: "max-bundle",
    };
  }

  /**
   * Get a ticket from rooms, then open the signalling socket. Throws api.ApiError (403
   * locked, 409 full, 422 bad name, 429) or SignalingError.
   */
  async join(password = null) {
    this.traceId = api.newTraceId(); // this join's trace: rooms, signalling, the relay
    const info = await api.joinRoom(this.room, password, storedOwnerKey(this.room), this.traceId);
    this.password = password;
    this.info = { ...info, owner_key: rememberOwnerKey(this.room, info.owner_key) };
    this.locked = Boolean(info.room && info.room.locked);
    for (const w of info.warnings || []) this.emit("notice", w);
    try {
      await this._connect(info);
    } catch (err) {
      api.leaveRoom(this.room, info.token).catch(() => {});
      throw err;
    }
    this._onUnload = () => this.leave({ unloading: true });
    window.addEventListener("pagehide", this._onUnload);
  }

  /** Live RTCPeerConnections by remote peer id (test hook, see window.parley); on the SFU
   * path the one connection to the server, as `sfu`. */
  connections() {
    if (this.mode === "sfu") return this.sfu ? { sfu: this.sfu.pc } : {};
    const out = {};
    for (const [id, { link }] of this.peers) out[id] = link.pc;
    return out;
  }

  /** Per person, what reports their audio in getStats(): their connection (mesh), or on
   * the SFU path their slot's audio receiver (the one connection carries everyone). */
  audioSources() {
    if (this.mode !== "sfu") return this.connections();
    const out = {};
    for (const [id, index] of this._slotOf || []) {
      const slot = this.sfu && this.sfu.slots[index];
      if (slot) out[id] = slot.audio.receiver;
    }
    return out;
  }

  /** Send a chat message to everyone in the room (never stored by the server). */
  sendChat(text) {
    const clean = String(text).trim().slice(0, CHAT_MAX);
    if (!clean || !this.signaling || this.ended) return false;
    const id = this._nextChatId();
    // While the socket is away the line waits (sent after the resume): shown as "not sent".
    const queued = this.signaling.state !== "open";
    this._unacked.set(id, { text: clean, sent: !queued });
    this.emit("chat", { from: this.peerId, text: clean, at: Date.now() / 1000, mine: true, queued, id });
    if (!queued) this.signaling.send({ type: "chat", text: clean, id });
    return true;
  }

  /** Send a line that was marked "not sent" again, as a new line; false if it is unknown. */
  retryChat(text) {
    return this.sendChat(text);
  }

  /**
   * Fresh ICE servers from rooms for every connection (a relay may have died: rooms then
   * names another one), applied with setConfiguration; used from the next ICE restart.
   * Calls within ICE_REFRESH_REUSE_MS share one request.
   */
  refreshIce() {
    const last = this._iceRefresh;
    if (last && Date.now() - last.at < ICE_REFRESH_REUSE_MS) return last.promise;
    const promise = (async () => {
      if (!this.info || this.ended) throw new Error("not in a call");
      const fresh = await api.freshIceServers(this.room, this.info.token);
      if (this.ended) return fresh;
      this.info = { ...this.info, ice_servers: fresh.ice_servers };
      for (const { link } of this.peers.values()) link.setIceServers(fresh.ice_servers);
      this.emit("ice-servers", fresh.ice_servers);
      return fresh;
    })();
    this._iceRefresh = { at: Date.now(), promise };
    promise.catch((err) => console.warn("parley: fresh ICE servers", err));
    return promise;
  }

  /** Lock the room with `password` (owner only). */
  async lock(password) {
    await api.lockRoom(this.room, this.info.owner_key, password);
    this.password = password;
    this._setLocked(true);
  }

  /** Unlock the room (owner only). */
  async unlock() {
    await api.unlockRoom(this.room, this.info.owner_key);
    this._setLocked(false);
  }

  /** The room's lock state changed (mine, or `room-state` from signalling): "lock" once. */
  _setLocked(locked) {
    if (locked === this.locked) return;
    this.locked = locked;
    this.emit("lock", locked);
  }

  /** Forget a call that failed to join, without touching the devices (pre-join keeps them). */
  detach() {
    for (const off of this._unsubscribe.splice(0)) off();
    this._offMedia();
    this.ended = true;
  }

  /** Leave: tell the server, close every connection, stop the devices. */
  leave({ unloading = false } = {}) {
    if (this.ended) return;
    if (this.signaling) this.signaling.leave();
    if (this.info) api.leaveRoom(this.room, this.info.token).catch(() => {});
    this._end("left", unloading ? "" : "Your camera and microphone are off.");
  }

  // --- signalling ------------------------------------------------------------------------

  async _connect(info) {
    const sig = new SignalingClient({
      url: info.signaling_url,
      room: this.room,
      token: info.token,
      media: () => this.media.state,
      traceparent: () => (this.traceId ? api.traceparent(this.traceId) : null),
    });
    this.signaling = sig;
    const on = (type, fn) => this._unsubscribe.push(sig.on(type, fn));
    on("welcome", (w) => this._onWelcome(w));
    on("peer-joined", ({ peer_id, media }) => {
      this._addPeer(peer_id, { ...DEFAULT_MEDIA, ...(media || {}) });
      this._sendMediaState(); // so the newcomer learns my name
    });
    on("peer-left", ({ peer_id, reason }) => this._removePeer(peer_id, reason || "left"));
    on("signal", ({ from, data }) => this._onSignal(from, data));
    on("media-state", (m) => this._onMediaState(m));
    on("room-state", ({ locked }) => this._setLocked(Boolean(locked)));
    on("media-path", ({ path }) => { if (path === "sfu") this._askForSfu(); });
    on("sfu", (msg) => this.sfu && this.sfu.onReply(msg));
    on("error", (e) => { if (e && e.ref === "sfu" && this.sfu) this.sfu.onReply(e); });
    on("chat-ack", ({ id }) => {
      if (this._unacked.delete(id)) this.emit("chat-acked", { id });
    });
    on("chat", ({ from, text, at, id }) => {
      if (from === this.peerId) return; // our own echo, already shown
      if (id) {
        const key = `${from} ${id}`;
        if (this._seenChat.has(key)) return; // sent again after a resume: shown already
        this._seenChat.add(key);
        if (this._seenChat.size > MAX_SEEN_CHAT) this._seenChat.delete(this._seenChat.values().next().value);
      }
      this.emit("chat", { from, text, at, mine: false });
    });
    on("error", (e) => console.warn("parley: signalling error", e));
    on("state", (state) => {
      clearTimeout(this._giveUpTimer);
      if (state === "reconnecting") {
        this._giveUpTimer = setTimeout(() => this._end("lost",
          "The server could not be reached for 3 minutes. Rejoin to try again."), GIVE_UP_MS);
      }
      this.emit("signaling", state);
    });
    on("closed", (err) => this._onSignalingClosed(err));
    await sig.connect();
  }

  _onWelcome(welcome) {
    const fresh = !welcome.resumed || welcome.peer_id !== this.peerId;
    if (fresh && this.peerId !== null) {
      // We came back as a new participant: the others have dropped our old connections.
      for (const id of [...this.peers.keys()]) this._removePeer(id, "reset");
    }
    this.peerId = welcome.peer_id;
    const media = this.info && this.info.media;
    const toSfu = this.mode === "mesh" && media && media.path === "sfu";
    if (toSfu) this.mode = "sfu"; // before the peers are added: no mesh links at all
    const present = new Set();
    for (const p of welcome.peers || []) {
      present.add(p.peer_id);
      const media = { ...DEFAULT_MEDIA, ...(p.media || {}) };
      if (this.peers.has(p.peer_id)) this._setPeerMedia(p.peer_id, media);
      else this._addPeer(p.peer_id, media, { initiator: true });
    }
    for (const id of [...this.peers.keys()]) {
      if (!present.has(id)) this._removePeer(id, "left"); // left while we were away
    }
    if (!fresh) {
      // Signals may have been lost while the socket was down: heal what is not connected.
      for (const { link } of this.peers.values()) {
        if (link.state !== "connected") link.restartIce();
      }
    }
    // A lock or unlock while we were away came as a room-state we did not get.
    if (typeof welcome.locked === "boolean") this._setLocked(welcome.locked);
    this._sendMediaState();
    this._resendChat();
    this.emit("joined", { peerId: this.peerId, room: this.room, owner: this.isOwner });
    if (toSfu) this._useSfu(media);
    else if (this.mode === "sfu" && this.sfu) this._sfuSubscribe();
    else this._checkMeshLimit();
  }

  // --- the SFU path ----------------------------------------------------------------------

  /** More people than the mesh holds: ask rooms (it decides, and may switch the room). */
  _checkMeshLimit() {
    const media = this.info && this.info.media;
    if (this.mode !== "mesh" || !media || this.ended) return;
    if (this.peers.size + 1 > media.mesh_max) this._askForSfu();
  }

  async _askForSfu() {
    if (this.ended || this._askingSfu || this.mode === "sfu") return;
    this._askingSfu = true;
    try {
      const media = await api.roomMedia(this.room, this.info.token);
      if (!this.ended && media && media.path === "sfu") this._useSfu(media);
    } catch (err) {
      console.warn("parley: media path", err);
    } finally {
      this._askingSfu = false;
    }
  }

  /** Switch to (or reconnect) the SFU path with this ticket; mesh links are closed. */
  async _useSfu(media) {
    if (this.ended) return;
    if (this.mode === "mesh") {
      this.mode = "sfu";
      for (const [id, peer] of this.peers) {
        const old = peer.link;
        this._bindLink(id, peer, new SfuPeerLink(id, null));
        old.close(); // quietly: its events no longer reach the UI
      }
    }
    if (!media.ticket) { // the room's SFU is gone and none is free yet: try again soon
      this._retrySfu();
      return;
    }
    const old = this.sfu;
    const sfu = new SfuConnection({
      config: this.rtcConfig,
      slots: media.slots,
      send: (msg) => this.signaling && this.signaling.send(msg),
      tracks: { audio: this.media.audioTrack, video: this.media.videoTrack },
    });
    this.sfu = sfu;
    if (old) old.close();
    sfu.on("state", (state) => {
      if (state === "connected") this._sfuTries = 0;
      if (state === "failed" && this.sfu === sfu) this._retrySfu(true);
    });
    this._assignSlots();
    for (const peer of this.peers.values()) {
      if (peer.link instanceof SfuPeerLink) peer.link.attach(sfu);
    }
    try {
      await sfu.start(media.ticket, this._slotMap());
    } catch (err) {
      console.warn("parley: SFU", err);
      if (this.sfu === sfu) this._retrySfu(true);
    }
  }

  /** Reconnect through rooms, which re-pins the room when its SFU is dead (failover). */
  _retrySfu(now = false) {
    if (this.ended || this._sfuRetry) return;
    const wait = now && this._sfuTries === 0 ? 0 : SFU_RETRY_MS[Math.min(this._sfuTries, SFU_RETRY_MS.length - 1)];
    this._sfuTries += 1;
    this._sfuRetry = setTimeout(async () => {
      this._sfuRetry = null;
      try {
        const media = await api.roomMedia(this.room, this.info.token);
        if (media && media.path === "sfu") await this._useSfu(media);
      } catch (err) {
        console.warn("parley: SFU failover", err);
        this._retrySfu();
      }
    }, wait);
  }

  /** Give each person a receive slot (keeping the ones they have). */
  _assignSlots() {
    const sfu = this.sfu;
    if (!sfu) return;
    const wanted = new Set(this.peers.keys());
    const kept = this._slotOf || new Map();
    const next = new Map();
    for (const [id, index] of kept) if (wanted.has(id) && index < sfu.slots.length) next.set(id, index);
    const used = new Set(next.values());
    let free = 0;
    for (const id of wanted) {
      if (next.has(id)) continue;
      while (used.has(free)) free += 1;
      if (free >= sfu.slots.length) break; // more people than slots: rooms' capacity prevents it
      next.set(id, free);
      used.add(free);
    }
    this._slotOf = next;
    sfu.slots.forEach((_, i) => {
      const id = [...next].find(([, index]) => index === i);
      sfu.setSlot(i, id ? id[0] : null);
    });
  }

  _slotMap() {
    return Object.fromEntries(this._slotOf || []);
  }

  _sfuSubscribe() {
    if (!this.sfu) return;
    this._assignSlots();
    this.sfu.subscribe(this._slotMap()).catch((err) => console.warn("parley: SFU slots", err));
  }

  async _onSignalingClosed(err) {
    if (this.ended) return;
    if (err instanceof SignalingError && REJOIN_CLOSE.has(err.code) && this.info) {
      // Away past the grace period (or our ticket is no longer accepted): get a new
      // ticket from rooms and join afresh, as a new participant.
      this.emit("signaling", "reconnecting");
      try {
        for (const off of this._unsubscribe.splice(0)) off();
        this.traceId = api.newTraceId();
        const info = await api.joinRoom(this.room, this.password, this.info.owner_key,
          this.traceId);
        this.info = { ...info, owner_key: rememberOwnerKey(this.room, info.owner_key) };
        await this._connect(this.info);
        return;
      } catch (rejoinErr) {
        err = rejoinErr;
      }
    }
    this._end("error", err.message || "The connection to the server was lost.");
  }

  _onSignal(from, data) {
    if (!data || typeof data !== "object" || this.mode === "sfu") return;
    let peer = this.peers.get(from);
    // A signal can overtake peer-joined when the two come through different replicas.
    if (!peer) peer = this._addPeer(from, DEFAULT_MEDIA);
    peer.link.handleSignal(data);
  }

  _onMediaState({ from, audio, video, screen, name }) {
    if (from === this.peerId) return;
    const peer = this.peers.get(from);
    if (!peer) return;
    this._setPeerMedia(from, { audio: Boolean(audio), video: Boolean(video), screen: Boolean(screen) });
    const clean = typeof name === "string" ? name : "";
    if (clean !== peer.name) {
      peer.name = clean;
      this.emit("peer-name", { id: from, name: clean });
    }
  }

  /**
   * After a welcome: my lines the server did not acknowledge go again (same ids: a line
   * that did reach the room before the socket dropped is shown once). As a new participant,
   * a line already written to a socket cannot (it may have reached the room under my old
   * id): "not sent", with Retry; one that never left the page goes now.
   */
  _resendChat() {
    const newcomer = this._sentAs !== undefined && this._sentAs !== this.peerId;
    for (const [id, line] of [...this._unacked]) {
      if ((newcomer && line.sent) || !this.signaling.send({ type: "chat", text: line.text, id })) {
        this._unacked.delete(id);
        this.emit("chat-failed", { id, text: line.text });
      } else {
        line.sent = true;
      }
    }
    this._sentAs = this.peerId;
  }

  /** My media state and name to the room (docs/signaling.md, "Display names"). */
  _sendMediaState() {
    if (!this.signaling || !this.peerId) return;
    const message = { type: "media-state", ...this.media.state };
    if (this.name) message.name = this.name;
    this.signaling.send(message);
  }

  // --- peers -----------------------------------------------------------------------------

  _addPeer(id, media, { initiator = false } = {}) {
    if (!id || id === this.peerId) return null;
    const existing = this.peers.get(id);
    if (existing) {
      // Peer ids are never reused; a signal merely overtook the peer-joined.
      this._setPeerMedia(id, media);
      return existing;
    }
    const link = this.mode === "sfu" ? new SfuPeerLink(id, null) : new PeerLink({
      localId: this.peerId,
      remoteId: id,
      config: this.rtcConfig,
      sendSignal: (data) => this.signaling && this.signaling.send({ type: "signal", to: id, data }),
      tracks: { audio: this.media.audioTrack, video: this.media.videoTrack },
      initiator,
      refreshIce: () => this.refreshIce(),
    });
    const peer = { link, media: { ...media }, name: "" }; // the link is there for "peer-added"
    this.peers.set(id, peer);
    this.emit("peer-added", { id, media: peer.media });
    this._bindLink(id, peer, link);
    if (this.mode === "sfu") {
      this._sfuSubscribe();
      link.attach(this.sfu);
    } else {
      this._checkMeshLimit();
    }
    return peer;
  }

  /** Make `link` the peer's connection: its tracks and states go to the UI. */
  _bindLink(id, peer, link) {
    if (peer.offs) for (const off of peer.offs) off();
    peer.link = link;
    peer.offs = [
      link.on("track", (stream) => this.emit("peer-stream", { id, stream })),
      link.on("state", (state) => this.emit("peer-state", { id, state })),
    ];
    this.emit("peer-state", { id, state: link.state });
  }

  _removePeer(id, reason) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.link.close();
    this.emit("peer-removed", { id, reason });
    if (this.mode === "sfu" && !this.ended) this._sfuSubscribe();
  }

  _setPeerMedia(id, media) {
    const peer = this.peers.get(id);
    if (!peer) return;
    peer.media = media;
    this.emit("peer-media", { id, media });
  }

  _onLocalChange({ audio, video }) {
    if (this.ended) return;
    if (this.sfu) {
      this.sfu.setTrack("audio", audio).catch((e) => console.warn("parley: audio track", e));
      this.sfu.setTrack("video", video).catch((e) => console.warn("parley: video track", e));
    }
    for (const { link } of this.peers.values()) {
      link.setTrack("audio", audio).catch((e) => console.warn("parley: audio track", e));
      link.setTrack("video", video).catch((e) => console.warn("parley: video track", e));
    }
    this._sendMediaState();
  }

  _end(reason, message) {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this._giveUpTimer);
    if (this._onUnload) window.removeEventListener("pagehide", this._onUnload);
    for (const off of this._unsubscribe.splice(0)) off();
    this._offMedia();
    clearTimeout(this._sfuRetry);
    if (this.signaling) this.signaling.close();
    if (this.sfu) this.sfu.close();
    // "ended": the call is over for me; the others did not leave (no "X left." for them).
    for (const id of [...this.peers.keys()]) this._removePeer(id, "ended");
    this.media.stop();
    for (const [id, { text }] of this._unacked) this.emit("chat-failed", { id, text });
    this._unacked.clear();
    this.emit("ended", { reason, message });
  }
}
