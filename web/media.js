// Local media: the camera and microphone (getUserMedia) and the screen (getDisplayMedia),
// with errors turned into messages a person can act on.

const VIDEO_CONSTRAINTS = Object.freeze({
  width: { ideal: 960 },
  height: { ideal: 540 },
  frameRate: { ideal: 24, max: 30 },
});
const AUDIO_CONSTRAINTS = Object.freeze({
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
});

/** Why a device could not be used: "denied" | "missing" | "busy" | "insecure" | "error". */
export function classifyError(err) {
  if (!err) return "error";
  switch (err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return window.isSecureContext ? "denied" : "insecure";
    case "NotFoundError":
    case "OverconstrainedError":
    case "DevicesNotFoundError":
      return "missing";
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return "busy";
    default:
      return "error";
  }
}

/** A sentence for the problem `reason` with the device named `what` ("camera"/"microphone"). */
export function problemText(what, reason) {
  switch (reason) {
    case "denied":
      return `Your ${what} is blocked. Allow it in the browser's site settings, then reload.`;
    case "missing":
      return `No ${what} was found.`;
    case "busy":
      return `Your ${what} is in use by another application.`;
    case "insecure":
      return `The ${what} needs a secure (https) page.`;
    default:
      return `Your ${what} could not be started.`;
  }
}

const hasMediaDevices = () => Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

async function deviceKinds() {
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return new Set(devices.map((d) => d.kind));
  } catch {
    return new Set(["audioinput", "videoinput"]);
  }
}

/**
 * Ask for the microphone and camera together (one prompt), falling back to each alone so
 * that one missing or denied device does not cost the other.
 *
 * Returns `{audio: MediaStreamTrack|null, video: MediaStreamTrack|null,
 *           problems: {audio?: reason, video?: reason}}`.
 */
export async function openUserMedia({ audio = true, video = true, audioId = null, videoId = null } = {}) {
  const result = { audio: null, video: null, problems: {} };
  if (!hasMediaDevices()) {
    const reason = window.isSecureContext ? "missing" : "insecure";
    if (audio) result.problems.audio = reason;
    if (video) result.problems.video = reason;
    return result;
  }
  const kinds = await deviceKinds();
  if (audio && !kinds.has("audioinput")) { result.problems.audio = "missing"; audio = false; }
  if (video && !kinds.has("videoinput")) { result.problems.video = "missing"; video = false; }
  if (!audio && !video) return result;

  // The devices chosen last time are preferred ("ideal"), not required: they may be gone.
  const constraints = {
    audio: audio ? withDevice(AUDIO_CONSTRAINTS, audioId, "ideal") : false,
    video: video ? withDevice(VIDEO_CONSTRAINTS, videoId, "ideal") : false,
  };
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    result.audio = stream.getAudioTracks()[0] || null;
    result.video = stream.getVideoTracks()[0] || null;
    return result;
  } catch (err) {
    if (!(audio && video)) {
      result.problems[audio ? "audio" : "video"] = classifyError(err);
      return result;
    }
  }
  // Together failed: try each alone to learn which one is the problem.
  const [a, v] = await Promise.all([openTrack("audio"), openTrack("video")]);
  Object.assign(result, { audio: a.track, video: v.track });
  if (a.reason) result.problems.audio = a.reason;
  if (v.reason) result.problems.video = v.reason;
  return result;
}

function withDevice(constraints, deviceId, how) {
  return deviceId ? { ...constraints, deviceId: { [how]: deviceId } } : constraints;
}

/**
 * Open one device: `{track, reason}`, exactly one set. `deviceId` is preferred ("ideal"),
 * or required with `how = "exact"` (the person picked it).
 */
export async function openTrack(kind, deviceId = null, how = "ideal") {
  if (!hasMediaDevices()) return { track: null, reason: window.isSecureContext ? "missing" : "insecure" };
  try {
    const stream = await navigator.mediaDevices.getUserMedia(
      kind === "audio" ? { audio: withDevice(AUDIO_CONSTRAINTS, deviceId, how) }
        : { video: withDevice(VIDEO_CONSTRAINTS, deviceId, how) },
    );
    const track = kind === "audio" ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
    return track ? { track, reason: null } : { track: null, reason: "missing" };
  } catch (err) {
    return { track: null, reason: classifyError(err) };
  }
}

/** Whether this browser can share a screen (phones cannot). */
export const canShareScreen = () =>
  Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);

/** Ask for a screen, window or tab; resolves to a video track, or null if the user cancelled. */
export async function openScreen() {
  try {
    const stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } },
      audio: false,
    });
    const track = stream.getVideoTracks()[0] || null;
    if (track) track.contentHint = "detail";
    return track;
  } catch (err) {
    if (err && err.name === "NotAllowedError") return null; // cancelled in the picker
    throw err;
  }
}

/** Stop a track if there is one. */
export function stopTrack(track) {
  if (track && track.readyState !== "ended") track.stop();
}
