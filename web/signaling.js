// The signalling socket (docs/signaling.md): join, keepalive, and reconnect + resume of the
// same peer id when the socket drops, to whichever replica answers at the same URL.

import { Emitter } from "./events.js";

const JOIN_TIMEOUT_MS = 10_000;
const RECONNECT_DELAYS_MS = [0, 500, 1000, 2000, 3000, 5000];
const FIRST_CONNECT_ATTEMPTS = 3;
const MAX_QUEUED = 200;
const QUEUEABLE = new Set(["signal", "media-state", "chat"]);

/** Close codes after which reconnecting with the same token cannot help. */
export const FATAL_CLOSE = Object.freeze({
  4003: "The server refused this page's address (Origin): open the call by the server's public address.",
  4400: "The server did not accept the join.",
  4401: "Your ticket to this room has expired.",
  4403: "That ticket is for another room.",
  4409: "This room is full.",
  4410: "You are no longer in this room: you left it from elsewhere, or your place lapsed.",
  4429: "Too many messages: the server closed the connection.",
  4000: "This call was taken over by another connection.",
  4404: "We were away too long to pick the call up where it was.",
});

/** Close codes told in FATAL_CLOSE's words rather than the server's terse reason. */
const OWN_WORDS = new Set([4410]);

/**
 * The websocket URL to open: config and join answers may give a path ("/ws"), resolved
 * against this page's own origin (http: -> ws:, https: -> wss:).
 */
export function absoluteWebSocketUrl(url, base = window.location.href) {
  let u;
  try {
    u = new URL(url, base);
  } catch {
    return url; // reported when the socket is opened
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u.href;
}

/** The socket closed for good (before or after the welcome). */
export class SignalingError extends Error {
  constructor(code, reason) {
    const words = OWN_WORDS.has(code) ? FATAL_CLOSE[code] : reason || FATAL_CLOSE[code];
    super(words || `The signalling connection closed (${code}).`);
    this.name = "SignalingError";
    this.code = code;
  }
}

/**
 * One participant's signalling connection.
 *
 * Events: "state" ("connecting" | "open" | "reconnecting" | "closed"), "welcome"
 * ({...welcome, resumed}), "peer-joined", "peer-left", "signal", "media-state", "chat",
 * "error" (the server's error message), "closed" (SignalingError: gave up).
 */
export class SignalingClient extends Emitter {
  constructor({ url, room, token, media = null, traceparent = null }) {
    super();
    this.media = media; // () => {audio, video, screen}: sent with every join
    this.traceparent = traceparent; // () => the join's W3C traceparent (or null): every join
    this.url = absoluteWebSocketUrl(url);
    this.room = room;
    this.token = token;
    this.peerId = null;
    this.resumeKey = null;
    this.state = "idle";
    this._ws = null;
    this._queue = [];
    this._pingTimer = null;
    this._pingInterval = 20;
    this._lastHeard = 0;
    this._attempt = 0;
    this._retryTimer = null;
    this._done = false;
    this._onOnline = () => { if (this.state === "reconnecting") this._reconnectNow(); };
    window.addEventListener("online", this._onOnline);
  }

  /** Open the socket and join; resolves with the welcome, rejects with SignalingError. */
  connect() {
    return new Promise((resolve, reject) => {
      let tries = 0;
      const attempt = () => {
        tries += 1;
        this._open({
          onWelcome: resolve,
          onFail: (err) => {
            const transient = !(err.code in FATAL_CLOSE);
            if (transient && tries < FIRST_CONNECT_ATTEMPTS && !this._done) {
              setTimeout(attempt, 500 * tries);
            } else {
              this._finish(null, false); // the rejection reports it, not a "closed" event
              reject(err);
            }
          },
        });
      };
      this._setState("connecting");
      attempt();
    });
  }

  /** Send a message now, or queue it while reconnecting (signal, media-state, chat only). */
  send(message) {
    if (this._done) return false;
    if (this.state === "open" && this._ws && this._ws.readyState === WebSocket.OPEN) {
      this._ws.send(JSON.stringify(message));
      return true;
    }
    if (QUEUEABLE.has(message.type) && this._queue.length < MAX_QUEUED) {
      this._queue.push(message);
      return true;
    }
    return false;
  }

  /** Say goodbye (`leave`) and close; no reconnect after this. */
  leave() {
    if (this._done) return;
    if (this._ws && this._ws.readyState === WebSocket.OPEN) {
      try { this._ws.send(JSON.stringify({ type: "leave" })); } catch { /* closing anyway */ }
    }
    this._finish(null, true);
  }

  /** Close without `leave` (the server will keep our peer id for its grace period). */
  close() {
    this._finish(null, true);
  }

  // --- internals -------------------------------------------------------------------------

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  _open({ onWelcome, onFail, resume = null }) {
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      onFail(new SignalingError(0, "The signalling URL is not valid."));
      return;
    }
    this._ws = ws;
    let welcomed = false;
    let failed = false;
    const fail = (err) => {
      if (failed || welcomed) return;
      failed = true;
      clearTimeout(joinTimer);
      onFail(err);
    };
    const joinTimer = setTimeout(() => {
      fail(new SignalingError(4408, "The signalling server did not answer."));
      try { ws.close(); } catch { /* ignore */ }
    }, JOIN_TIMEOUT_MS);

    ws.addEventListener("open", () => {
      const join = { type: "join", token: this.token, room: this.room };
      if (resume) join.resume = resume;
      if (this.media) join.media = this.media();
      const tp = this.traceparent && this.traceparent();
      if (tp) join.traceparent = tp;
      ws.send(JSON.stringify(join));
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this._ws) return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      this._lastHeard = Date.now();
      if (msg.type === "welcome" && !welcomed) {
        welcomed = true;
        clearTimeout(joinTimer);
        const resumed = msg.resumed ?? (resume !== null && msg.peer_id === resume.peer_id);
        this.peerId = msg.peer_id;
        this.resumeKey = msg.resume_key || this.resumeKey;
        this._pingInterval = Number(msg.ping_interval) > 0 ? Number(msg.ping_interval) : 20;
        this._attempt = 0;
        this._setState("open");
        this._startPing();
        const welcome = { ...msg, resumed };
        this.emit("welcome", welcome);
        if (onWelcome) onWelcome(welcome);
        this._flush();
        return;
      }
      if (msg.type === "pong") return;
      this.emit(msg.type, msg);
    });
    ws.addEventListener("close", (event) => {
      clearTimeout(joinTimer);
      if (ws !== this._ws) return; // a socket we already replaced
      this._stopPing();
      if (this._done) return;
      if (!welcomed) {
        fail(new SignalingError(event.code, event.reason));
        return;
      }
      // We were in the call: a normal server close after `leave` is final, anything
      // else (network, replica going away) means reconnect and resume.
      if (event.code in FATAL_CLOSE) {
        this._finish(new SignalingError(event.code, event.reason), false);
      } else {
        this._scheduleReconnect();
      }
    });
  }

  _scheduleReconnect() {
    this._setState("reconnecting");
    const delay = RECONNECT_DELAYS_MS[Math.min(this._attempt, RECONNECT_DELAYS_MS.length - 1)];
    this._attempt += 1;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._reconnectNow(), delay);
  }

  _reconnectNow() {
    clearTimeout(this._retryTimer);
    if (this._done) return;
    if (this._ws && this._ws.readyState === WebSocket.CONNECTING) return;
    this._open({
      resume: this.peerId && this.resumeKey ? { peer_id: this.peerId, key: this.resumeKey } : null,
      onWelcome: null,
      onFail: (err) => {
        if (this._done) return;
        if (err.code in FATAL_CLOSE) this._finish(err, false);
        else this._scheduleReconnect();
      },
    });
  }

  _flush() {
    const queued = this._queue.splice(0);
    for (const message of queued) this.send(message);
  }

  _startPing() {
    this._stopPing();
    const everyMs = this._pingInterval * 1000;
    this._pingTimer = setInterval(() => {
      const ws = this._ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      if (Date.now() - this._lastHeard > everyMs * 2.5) {
        // Nothing heard for too long: the socket is dead even if the browser has not noticed.
        this._ws = null;
        try { ws.close(); } catch { /* ignore */ }
        this._stopPing();
        this._scheduleReconnect();
        return;
      }
      ws.send(JSON.stringify({ type: "ping" }));
    }, everyMs);
  }

  _stopPing() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  _finish(error, intentional) {
    if (this._done) return;
    this._done = true;
    clearTimeout(this._retryTimer);
    this._stopPing();
    window.removeEventListener("online", this._onOnline);
    const ws = this._ws;
    this._ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try { ws.close(1000, intentional ? "leave" : "error"); } catch { /* ignore */ }
    }
    this._queue = [];
    this._setState("closed");
    if (error) this.emit("closed", error);
  }
}
