// My own media: microphone, camera and screen tracks, and the mute/camera/share switches.
// The same object lives from the pre-join preview into the call.

import { Emitter } from "./events.js";
import { openScreen, openTrack, openUserMedia, stopTrack } from "./media.js";

/**
 * Events: "change" ({audio: MediaStreamTrack|null, video: MediaStreamTrack|null}) whenever
 * what we send or how we show ourselves changes; "problem" ({kind, reason}).
 */
export class LocalMedia extends Emitter {
  constructor() {
    super();
    this.audioTrack = null;
    this.cameraTrack = null;
    this.screenTrack = null;
    this.micOn = true;
    this.cameraOn = true;
    this.problems = {};
    this.deviceIds = { audio: null, video: null }; // chosen devices (null: the default)
    this._busy = Promise.resolve();
  }

  /** Open the devices wanted (`micOn`, `cameraOn`); missing or denied ones become problems. */
  async start({ micOn = true, cameraOn = true, audioId = null, videoId = null } = {}) {
    this.micOn = micOn;
    this.cameraOn = cameraOn;
    this.deviceIds = { audio: audioId, video: videoId };
    // Always ask for the microphone so that unmuting later needs no new prompt.
    const got = await openUserMedia({ audio: true, video: cameraOn, audioId, videoId });
    this.audioTrack = got.audio;
    this.cameraTrack = got.video;
    this.problems = { ...got.problems };
    if (this.audioTrack) this.audioTrack.enabled = this.micOn;
    if (!this.cameraTrack) this.cameraOn = false;
    if (!this.audioTrack) this.micOn = false;
    this._changed();
  }

  /** What goes out as video: the screen while sharing, else the camera if it is on. */
  get videoTrack() {
    return this.screenTrack || (this.cameraOn ? this.cameraTrack : null);
  }

  get sharing() {
    return Boolean(this.screenTrack);
  }

  /** The `media-state` message fields (docs/signaling.md). */
  get state() {
    return {
      audio: Boolean(this.audioTrack && this.micOn),
      video: Boolean(this.cameraTrack && this.cameraOn),
      screen: this.sharing,
    };
  }

  /**
   * Use another microphone or camera: the new track replaces the old one (in a call every
   * sender swaps it with replaceTrack: no renegotiation). A camera that is off or resting
   * during a screen share is only remembered. Resolves true, or false with a problem.
   */
  useDevice(kind, deviceId) {
    return this._serial(async () => {
      this.deviceIds[kind] = deviceId;
      const current = kind === "audio" ? this.audioTrack : this.cameraTrack;
      if (!current) return true;
      if (current.getSettings().deviceId === deviceId) return true;
      const { track, reason } = await openTrack(kind, deviceId, "exact");
      if (!track) return this._problem(kind, reason);
      stopTrack(current);
      if (kind === "audio") {
        track.enabled = this.micOn;
        this.audioTrack = track;
      } else {
        this.cameraTrack = track;
      }
      this._changed();
      return true;
    });
  }

  /** Mute or unmute; opens the microphone if we have none yet. Returns the new state. */
  setMic(on) {
    return this._serial(async () => {
      if (on && !this.audioTrack) {
        const { track, reason } = await openTrack("audio", this.deviceIds.audio);
        if (!track) return this._problem("audio", reason);
        this.audioTrack = track;
        delete this.problems.audio;
      }
      this.micOn = on;
      if (this.audioTrack) this.audioTrack.enabled = on;
      this._changed();
      return true;
    });
  }

  /** Camera on (opens it) or off (stops it, so the camera light goes out). */
  setCamera(on) {
    return this._serial(async () => {
      if (!on) {
        stopTrack(this.cameraTrack);
        this.cameraTrack = null;
        this.cameraOn = false;
        this._changed();
        return true;
      }
      if (!this.sharing && !this.cameraTrack) {
        const { track, reason } = await openTrack("video", this.deviceIds.video);
        if (!track) return this._problem("video", reason);
        this.cameraTrack = track;
        delete this.problems.video;
      }
      this.cameraOn = true;
      this._changed();
      return true;
    });
  }

  /** Share a screen; resolves false if the user cancelled the picker. */
  startScreen() {
    return this._serial(async () => {
      if (this.sharing) return true;
      let track;
      try {
        track = await openScreen();
      } catch (err) {
        return this._problem("screen", "error");
      }
      if (!track) return false;
      // The browser's own "Stop sharing" bar ends the track.
      track.addEventListener("ended", () => this.stopScreen());
      this.screenTrack = track;
      // The camera rests while the screen is shared; it comes back afterwards if it was on.
      stopTrack(this.cameraTrack);
      this.cameraTrack = null;
      this._changed();
      return true;
    });
  }

  /** Stop sharing; the camera comes back if it was on. */
  stopScreen() {
    return this._serial(async () => {
      if (!this.sharing) return true;
      stopTrack(this.screenTrack);
      this.screenTrack = null;
      if (this.cameraOn) {
        const { track, reason } = await openTrack("video", this.deviceIds.video);
        if (track) this.cameraTrack = track;
        else { this.cameraOn = false; this._problem("video", reason); }
      }
      this._changed();
      return true;
    });
  }

  /** Stop every track (leave). */
  stop() {
    for (const t of [this.audioTrack, this.cameraTrack, this.screenTrack]) stopTrack(t);
    this.audioTrack = this.cameraTrack = this.screenTrack = null;
    this._changed();
  }

  _serial(fn) {
    const run = this._busy.then(fn, fn);
    this._busy = run.catch(() => {});
    return run;
  }

  _problem(kind, reason) {
    this.problems[kind] = reason;
    this.emit("problem", { kind, reason });
    this._changed();
    return false;
  }

  _changed() {
    this.emit("change", { audio: this.audioTrack, video: this.videoTrack });
  }
}
