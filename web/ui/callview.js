// The call view: the grid of tiles, the control buttons, chat, lock, copy link, leave.

import { canShareScreen, problemText } from "../media.js";
import { DevicePicker } from "../devices.js";
import { uniqueLabels } from "../names.js";
import { QualityWatch } from "../quality.js";
import { SpeakerWatch } from "../speaker.js";
import { SHORTCUTS, listenForShortcuts } from "../shortcuts.js";
import { settings } from "../settings.js";
import { ChatPanel } from "./chat.js";
import { $, el, setButton, showView, toast } from "./dom.js";
import { Grid } from "./grid.js";
import { AlonePanel } from "./alone.js";
import { askToLock } from "./lockdialog.js";
import { MoreMenu } from "./moremenu.js";
import { renderMediaButtons } from "./prejoin.js";
import { Tile } from "./tile.js";

const DEVICE_NAMES = { audio: "microphone", video: "camera", screen: "screen" };

/** Copy `text` to the clipboard; falls back to a selection copy on plain-http pages. */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-only";
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

/** Show the call view for a joined `call`. */
export function showCall(call) {
  showView("call");
  const { media, room } = call;
  const grid = new Grid($("grid"));
  // The stage: a pinned tile, else a shared screen (someone else's: mine I know already).
  let pinned = null;
  const pin = (id) => {
    pinned = pinned === id ? null : id;
    for (const [tid, tile] of grid.tiles) tile.setPinned(tid === pinned);
    restage();
  };
  const restage = () => {
    if (pinned && !grid.get(pinned)) pinned = null;
    const sharing = [...grid.tiles.values()].find((t) => !t.self && t.media.screen);
    grid.setStage(pinned || (sharing ? sharing.id : null));
  };
  const self = new Tile({ id: "self", self: true, onPin: pin });
  grid.add(self);
  // Everyone's label, unique within the room (docs/signaling.md, "Display names").
  let labels = new Map();
  const nameOf = (id) => labels.get(id) || "";
  const relabel = () => {
    const names = new Map([["self", call.name], ...[...call.peers].map(([id, p]) => [id, p.name])]);
    labels = uniqueLabels(names, call.peerId || "self");
    for (const [id, label] of labels) grid.get(id)?.setName(label);
    chat.relabel();
  };

  const micBtn = $("btn-mic");
  const camBtn = $("btn-cam");
  const screenBtn = $("btn-screen");
  const copyBtn = $("btn-copy");
  const lockBtn = $("btn-lock");
  const leaveBtn = $("btn-leave");
  const sigStatus = $("sig-status");
  const roomLabel = $("room-label");
  const more = new MoreMenu();
  const chat = new ChatPanel({ send: (text) => call.sendChat(text), toggleButton: $("btn-chat"), nameOf });

  roomLabel.hidden = false;
  const link = `${location.origin}/${encodeURIComponent(room)}`;
  const alone = new AlonePanel({
    link, capacity: call.info.room && call.info.room.capacity, copy: copyText, notify: toast,
  });
  const updateTitle = () => {
    const n = call.peers.size + 1;
    alone.update(n === 1);
    roomLabel.textContent = `${room} · ${n} in call`;
    document.title = `(${n}) ${room} · Parley`;
  };
  updateTitle();

  // --- my media -------------------------------------------------------------------------
  const renderSelf = () => {
    renderMediaButtons(media, micBtn, camBtn);
    const sharing = media.sharing;
    setButton(screenBtn, {
      label: sharing ? "Stop sharing" : "Share screen",
      iconName: sharing ? "screen-off" : "screen",
    });
    screenBtn.classList.toggle("on", sharing);
    const track = media.videoTrack;
    const shown = self.video.srcObject && self.video.srcObject.getVideoTracks()[0];
    if (track && shown !== track) self.setStream(new MediaStream([track]));
    if (!track) self.video.srcObject = null;
    self.setMedia({ audio: media.state.audio, video: Boolean(track), screen: sharing });
  };
  const offChange = media.on("change", renderSelf);
  const offProblem = media.on("problem", ({ kind, reason }) =>
    toast(problemText(DEVICE_NAMES[kind] || kind, reason), { kind: "error", ms: 6000 }));
  renderSelf();
  screenBtn.hidden = !canShareScreen();

  micBtn.addEventListener("click", async () => {
    await media.setMic(!(media.micOn && media.audioTrack));
    settings.micOn = media.micOn;
  });
  camBtn.addEventListener("click", async () => {
    await media.setCamera(!media.cameraOn);
    settings.cameraOn = media.cameraOn;
  });
  screenBtn.addEventListener("click", () => (media.sharing ? media.stopScreen() : media.startScreen()));

  // Devices: pickers and the level meter in a dialog; the meter runs only while it is open.
  const devicesDialog = $("devices-dialog");
  let picker = null;
  $("btn-devices").addEventListener("click", () => {
    picker = new DevicePicker({
      media, mic: $("call-mic-select"), camera: $("call-cam-select"), meter: $("call-mic-level"),
    });
    devicesDialog.showModal();
  });
  devicesDialog.addEventListener("close", () => {
    if (picker) picker.destroy();
    picker = null;
  });

  // Keyboard shortcuts and their list ("?", or "Shortcuts" in the bar).
  const keysDialog = $("keys-dialog");
  $("keys-list").replaceChildren(...SHORTCUTS.flatMap(({ key, what }) =>
    [el("dt", {}, el("kbd", { text: key })), el("dd", { text: what })]));
  const showKeys = () => { if (!keysDialog.open) keysDialog.showModal(); };
  $("btn-keys").addEventListener("click", showKeys);
  const stopShortcuts = listenForShortcuts({ showHelp: showKeys });

  copyBtn.addEventListener("click", async () => {
    const ok = await copyText(link);
    toast(ok ? "Link copied. Send it to the people you want to talk to." : `Copy this link: ${link}`, { ms: ok ? 3500 : 10000 });
  });

  // --- lock (owner only) -----------------------------------------------------------------
  // Everyone sees the lock in the header; the owner's button shows the state it is in
  // (pressed and "Locked" while locked; pressing it again unlocks).
  const renderLock = () => {
    lockBtn.hidden = !call.isOwner;
    setButton(lockBtn, {
      label: call.locked ? "Locked" : "Lock room",
      iconName: call.locked ? "lock" : "unlock",
    });
    lockBtn.setAttribute("aria-pressed", String(call.locked));
    lockBtn.title = call.locked ? "Unlock the room" : "Lock the room with a password";
    lockBtn.classList.toggle("on", call.locked);
    $("lock-state").hidden = !call.locked;
  };
  renderLock();
  lockBtn.addEventListener("click", async () => {
    if (call.locked) {
      try {
        await call.unlock();
      } catch (err) {
        toast(`Could not unlock the room: ${err.message}`, { kind: "error" });
      }
    } else {
      await askToLock((password) => call.lock(password));
    }
    renderLock();
    lockBtn.focus();
  });

  // --- remote participants ---------------------------------------------------------------
  const tileFor = (id) => {
    let tile = grid.get(id);
    if (!tile) {
      tile = new Tile({ id, onPin: pin });
      grid.add(tile);
      updateTitle();
      relabel();
    }
    return tile;
  };
  const joinNotices = new Map(); // peer id -> timer of its "X joined." toast
  const announceJoin = (id) => {
    clearTimeout(joinNotices.get(id));
    joinNotices.delete(id);
    if (grid.get(id)) toast(`${nameOf(id)} joined.`, { ms: 2500 });
  };
  const offs = [
    offChange,
    offProblem,
    call.on("peer-added", ({ id, media: m }) => {
      tileFor(id).setMedia(m);
      restage();
      // Say who joined once their name arrived (their first media-state), or soon anyway.
      joinNotices.set(id, setTimeout(() => announceJoin(id), 1500));
    }),
    call.on("peer-name", ({ id }) => {
      relabel();
      if (joinNotices.has(id)) announceJoin(id);
    }),
    call.on("peer-removed", ({ id, reason }) => {
      const tile = grid.get(id);
      if (!tile) return;
      grid.remove(id);
      clearTimeout(joinNotices.get(id));
      joinNotices.delete(id);
      updateTitle();
      relabel();
      restage();
      if (reason !== "reset" && reason !== "ended") toast(`${tile.name} left${reason === "timeout" ? " (connection lost)" : ""}.`, { ms: 2500 });
    }),
    call.on("peer-media", ({ id, media: m }) => {
      tileFor(id).setMedia(m);
      restage();
    }),
    call.on("peer-stream", ({ id, stream }) => tileFor(id).setStream(stream)),
    call.on("peer-state", ({ id, state }) => grid.get(id)?.setState(state)),
    call.on("chat", (message) => chat.add(message)),
    call.on("lock", (locked) => {
      renderLock();
      toast(locked ? "The room is now locked: people who join need the password."
        : "The room is unlocked: anyone with the link can join.", { ms: 4000 });
    }),
    call.on("chat-acked", ({ id }) => chat.markAcked(id)),
    call.on("chat-failed", ({ id, text }) => chat.markFailed(id, text)),
    call.on("notice", (text) => toast(text, { ms: 6000 })),
    call.on("signaling", (state) => {
      sigStatus.hidden = state !== "reconnecting";
      sigStatus.textContent = state === "reconnecting"
        ? "The server cannot be reached. Trying to reconnect…" : "";
    }),
  ];
  // Peers listed in the welcome were added before this view listened.
  for (const [id, peer] of call.peers) {
    const tile = tileFor(id);
    tile.setMedia(peer.media);
    tile.setState(peer.link.state);
    if (peer.link.remoteStream.getTracks().length) tile.setStream(peer.link.remoteStream);
  }
  relabel();
  restage();
  const quality = new QualityWatch(call, (id, q) => grid.get(id)?.setQuality(q));
  const speakers = new SpeakerWatch({
    call,
    onSpeaking: (id, speaking) => grid.get(id)?.setSpeaking(speaking),
    onMutedSpeech: () => toast("You are muted. Unmute (or press m) to be heard.", { ms: 5000 }),
  });
  for (const w of call.info.warnings || []) toast(w, { ms: 6000 });

  // --- leaving ---------------------------------------------------------------------------
  leaveBtn.addEventListener("click", () => call.leave());
  call.on("ended", ({ reason, message }) => {
    for (const off of offs) off();
    quality.stop();
    stopShortcuts();
    speakers.stop();
    more.destroy();
    alone.destroy();
    grid.destroy();
    sigStatus.hidden = true;
    roomLabel.hidden = true;
    $("lock-state").hidden = true;
    document.title = "Parley";
    $("ended-title").textContent = reason === "left" ? "You left the call"
      : reason === "lost" ? "The call could not be restored" : "The call ended";
    $("ended-message").textContent = message || "";
    $("rejoin-link").href = `/${encodeURIComponent(room)}`;
    showView("ended");
    $("rejoin-link").focus();
  });
  micBtn.focus();
}
