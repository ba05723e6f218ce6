// Rooms API: the few same-origin HTTP calls the client makes (config, create, join, lock,
// leave, fresh ICE servers).

/** An HTTP answer other than success, with the status and the server's `detail`. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail || "";
  }
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const randomHex = (n) => hex(crypto.getRandomValues(new Uint8Array(n)));

/** A fresh random W3C trace id (32 hex digits): one per join, so that the join request,
 * the signalling join and what they cause server-side form one trace (docs/operations.md). */
export function newTraceId() {
  let id = randomHex(16);
  while (/^0+$/.test(id)) id = randomHex(16);
  return id;
}

/** A W3C `traceparent` (version 00, sampled) in trace `traceId`, with a fresh parent id. */
export function traceparent(traceId) {
  let span = randomHex(8);
  while (/^0+$/.test(span)) span = randomHex(8);
  return `00-${traceId}-${span}-01`;
}

async function request(method, path, body, { keepalive = false, traceId = null } = {}) {
  let response;
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  if (traceId) headers.traceparent = traceparent(traceId);
  try {
    response = await fetch(path, {
      method,
      keepalive,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "The server cannot be reached. Check your connection.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    let detail = data && data.detail;
    if (Array.isArray(detail)) detail = detail.map((d) => d.msg || String(d)).join("; ");
    throw new ApiError(response.status, typeof detail === "string" ? detail : "");
  }
  return data;
}

const roomPath = (name) => `/api/rooms/${encodeURIComponent(name)}`;

/** GET /config.json: signalling URL, force_relay, capacity, metrics_url, version. */
export const getConfig = () => request("GET", "/config.json");

/** POST /api/rooms: a fresh random room `{name, url}` (an empty JSON body: rooms takes
 * only `application/json` POSTs, which a foreign page cannot send without a preflight). */
export const createRoom = () => request("POST", "/api/rooms", {});

/**
 * POST /api/rooms/{name}/join: peer id, join token, ICE servers, room info, owner key.
 * `ownerKey`: the room's owner key this tab was given, so that its owner stays the owner.
 * `traceId`: the join's trace (newTraceId()), sent as a W3C `traceparent` header.
 */
export const joinRoom = (name, password = null, ownerKey = null, traceId = null) =>
  request("POST", `${roomPath(name)}/join`,
    ownerKey ? { password, owner_key: ownerKey } : { password }, { traceId });

/** POST /api/rooms/{name}/lock (owner only). */
export const lockRoom = (name, ownerKey, password) =>
  request("POST", `${roomPath(name)}/lock`, { owner_key: ownerKey, password });

/** POST /api/rooms/{name}/unlock (owner only). */
export const unlockRoom = (name, ownerKey) =>
  request("POST", `${roomPath(name)}/unlock`, { owner_key: ownerKey });

/** POST /api/rooms/{name}/media: the room's media path and, on the SFU path, a ticket. */
export const roomMedia = (name, token) => request("POST", `${roomPath(name)}/media`, { token });

/** POST /api/rooms/{name}/leave; `keepalive` so it still goes out while the page unloads. */
export const leaveRoom = (name, token) =>
  request("POST", `${roomPath(name)}/leave`, { token }, { keepalive: true });

/**
 * POST /api/rooms/{name}/ice: fresh ICE servers (the room's relay, moved off a relay that
 * stopped answering, with new TURN credentials) for a member whose ICE failed.
 */
export const freshIceServers = (name, token) =>
  request("POST", `${roomPath(name)}/ice`, { token });
