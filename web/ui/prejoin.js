// Pre-join at /{room}: camera preview, mic/camera switches, device problems, the relay and
// usage-statistics settings, the password when the room is locked, and the "Join" button.

import { ApiError, createRoom } from "../api.js";
import { beaconsAllowed } from "../beacon.js";
import { Call } from "../call.js";
import { LocalMedia } from "../localmedia.js";
import { problemText } from "../media.js";
import { DevicePicker } from "../devices.js";
import { cleanName, randomName } from "../names.js";
import { settings } from "../settings.js";
import { SignalingError } from "../signaling.js";
import { $, el, setButton, showView, toast } from "./dom.js";

const DEVICE_NAMES = { audio: "microphone", video: "camera", screen: "screen" };

/** Render the mic/camera buttons for `media` (used here and in the call). */
export function renderMediaButtons(media, micButton, camButton) {
  const mic = media.micOn && media.audioTrack;
  setButton(micButton, { label: mic ? "Mute" : "Unmute", iconName: mic ? "mic" : "mic-off", active: Boolean(mic) });
  const cam = media.cameraOn && (media.cameraTrack || media.sharing);
  setButton(camButton, { label: cam ? "Camera off" : "Camera on", iconName: cam ? "cam" : "cam-off", active: Boolean(cam) });
}

/** A sentence for a failed join. */
function joinErrorText(err, { sentPassword, capacity }) {
  if (err instanceof ApiError) {
    switch (err.status) {
      case 403:
        return sentPassword ? "That password is not right." : "This room is locked. Type its password to join.";
      case 409:
        return capacity
          ? `This room is full (${capacity} people). Start a new room, or try again when someone leaves.`
          : "This room is full. Start a new room, or try again when someone leaves.";
      case 422:
        return `This room name is not valid: ${err.detail}`;
      case 429:
        return "Too many attempts. Wait a minute, then try again.";
      default:
        return `Could not join: ${err.message}`;
    }
  }
  if (err instanceof SignalingError) return `Could not join: ${err.message}`;
  return `Could not join: ${err && err.message ? err.message : err}`;
}

/**
 * "Send anonymous usage statistics": shown only when this server collects them (config
 * `metrics_url`); unticked, disabled and explained when the browser's Global Privacy
 * Control or Do Not Track already decides.
 */
function showStatsSetting(config) {
  const box = $("stats-check");
  const blocked = $("stats-blocked");
  $("stats-setting").hidden = !config.metrics_url;
  const { ok, why } = beaconsAllowed();
  const byBrowser = !ok && settings.sendUsageStats; // GPC or DNT, not the user's choice
  box.checked = settings.sendUsageStats && !byBrowser;
  box.disabled = byBrowser;
  blocked.hidden = !byBrowser;
  blocked.textContent = byBrowser ? `Nothing is sent: ${why}.` : "";
  box.addEventListener("change", () => { settings.sendUsageStats = box.checked; });
}

/**
 * Show the pre-join view for `room`; resolves with a joined Call when the person joins.
 */
export function showPrejoin({ room, config }) {
  showView("prejoin");
  const media = new LocalMedia();
  const video = $("preview-video");
  const avatar = $("preview-avatar");
  const micBtn = $("pre-mic");
  const camBtn = $("pre-cam");
  const problems = $("device-problems");
  const form = $("prejoin-form");
  const joinBtn = $("join-button");
  const error = $("prejoin-error");
  const pwField = $("password-field");
  const pwInput = $("password-input");
  const relay = $("relay-check");
  const nameInput = $("name-input");

  // "Your name": remembered in this browser; the first visit draws a random one.
  if (!settings.displayName) settings.displayName = randomName();
  nameInput.value = settings.displayName;
  nameInput.addEventListener("change", () => {
    const name = cleanName(nameInput.value);
    if (name) settings.displayName = name;
  });

  $("prejoin-room").textContent = room;
  relay.checked = settings.alwaysRelay || Boolean(config.force_relay);
  relay.disabled = Boolean(config.force_relay);
  $("relay-forced").hidden = !config.force_relay;
  relay.addEventListener("change", () => { settings.alwaysRelay = relay.checked; });
  showStatsSetting(config);

  const render = () => {
    renderMediaButtons(media, micBtn, camBtn);
    const track = media.videoTrack;
    if (track) {
      const current = video.srcObject && video.srcObject.getVideoTracks()[0];
      if (current !== track) video.srcObject = new MediaStream([track]);
    } else {
      video.srcObject = null;
    }
    avatar.hidden = Boolean(track);
    problems.replaceChildren(...Object.entries(media.problems).map(([kind, reason]) =>
      el("li", { text: problemText(DEVICE_NAMES[kind] || kind, reason) })));
    if (Object.keys(media.problems).length) {
      problems.append(el("li", { className: "hint", text: "You can still join: you will see and hear the others." }));
    }
  };
  const offChange = media.on("change", render);
  // A switch that cannot work says why (the same sentence as the problem line, and as the
  // call's buttons), instead of doing nothing visible.
  const offProblem = media.on("problem", ({ kind, reason }) =>
    toast(problemText(DEVICE_NAMES[kind] || kind, reason), { kind: "error", ms: 6000 }));
  render();
  const ready = media.start({
    micOn: settings.micOn, cameraOn: settings.cameraOn, audioId: settings.micId, videoId: settings.cameraId,
  }).catch((err) => {
    console.warn("parley: media", err);
  });
  const picker = new DevicePicker({
    media, mic: $("pre-mic-select"), camera: $("pre-cam-select"), meter: $("pre-mic-level"),
  });

  micBtn.addEventListener("click", async () => {
    await media.setMic(!(media.micOn && media.audioTrack));
    settings.micOn = media.micOn;
  });
  camBtn.addEventListener("click", async () => {
    await media.setCamera(!(media.cameraOn && media.cameraTrack));
    settings.cameraOn = media.cameraOn;
  });

  // A full room: the way on is a room of one's own.
  const newRoom = $("new-room");
  newRoom.addEventListener("click", async () => {
    newRoom.disabled = true;
    try {
      const created = await createRoom();
      location.assign(`/${encodeURIComponent(created.name)}`);
    } catch (err) {
      error.textContent = `Could not start a new room: ${err.message}`;
      newRoom.disabled = false;
    }
  });

  return new Promise((resolve) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (joinBtn.disabled) return;
      performance.mark("parley:join"); // Join→first remote frame is measured from here
      joinBtn.disabled = true;
      joinBtn.setAttribute("aria-busy", "true");
      error.textContent = "";
      const password = pwField.hidden ? null : pwInput.value || null;
      await ready;
      const name = cleanName(nameInput.value) || settings.displayName;
      settings.displayName = name;
      nameInput.value = name;
      const call = new Call({ room, config, media, name });
      try {
        await call.join(password);
        offChange();
        offProblem();
        picker.destroy();
        resolve(call);
      } catch (err) {
        call.detach();
        error.textContent = joinErrorText(err, { sentPassword: password !== null, capacity: config.capacity });
        newRoom.hidden = !(err instanceof ApiError && err.status === 409);
        if (err instanceof ApiError && err.status === 403) {
          pwField.hidden = false;
          pwInput.setAttribute("aria-invalid", String(password !== null));
          pwInput.select();
          pwInput.focus();
        }
      } finally {
        joinBtn.disabled = false;
        joinBtn.removeAttribute("aria-busy");
      }
    });
    joinBtn.focus();
  });
}
