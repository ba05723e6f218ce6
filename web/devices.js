// Camera and microphone pickers and the microphone level meter, on the pre-join screen and
// in the call's "Devices" dialog. Picking a device swaps the track (LocalMedia.useDevice:
// replaceTrack in a call, no renegotiation) and is remembered for next time.

import { settings } from "./settings.js";

const METER_EVERY_MS = 100;

/** Fill `select` with the devices of `kind`, selecting `current`. */
function fill(select, devices, current, fallback) {
  const options = devices.map((d, i) => {
    const option = document.createElement("option");
    option.value = d.deviceId;
    option.textContent = d.label || `${fallback} ${i + 1}`;
    return option;
  });
  select.replaceChildren(...options);
  if (current && devices.some((d) => d.deviceId === current)) select.value = current;
  select.disabled = devices.length === 0;
}

export class DevicePicker {
  /**
   * @param {object} o
   * @param {import("./localmedia.js").LocalMedia} o.media
   * @param {HTMLSelectElement} o.mic     microphone picker
   * @param {HTMLSelectElement} o.camera  camera picker
   * @param {HTMLMeterElement} o.meter    microphone level (0..1)
   */
  constructor({ media, mic, camera, meter }) {
    this.media = media;
    this.mic = mic;
    this.camera = camera;
    this.meter = meter;
    this._onDeviceChange = () => this.refresh();
    navigator.mediaDevices?.addEventListener?.("devicechange", this._onDeviceChange);
    this._offChange = media.on("change", () => this.refresh());
    mic.addEventListener("change", () => this._pick("audio", mic.value));
    camera.addEventListener("change", () => this._pick("video", camera.value));
    this._meter = new LevelMeter(meter);
    this.refresh();
  }

  async _pick(kind, deviceId) {
    if (kind === "audio") settings.micId = deviceId;
    else settings.cameraId = deviceId;
    await this.media.useDevice(kind, deviceId);
  }

  /** Re-list the devices (labels appear once access is granted) and show the current ones. */
  async refresh() {
    this._meter.listen(this.media.audioTrack);
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      devices = [];
    }
    const inUse = (track, kind) => (track && track.getSettings().deviceId) || this.media.deviceIds[kind];
    fill(this.mic, devices.filter((d) => d.kind === "audioinput"), inUse(this.media.audioTrack, "audio"), "Microphone");
    fill(this.camera, devices.filter((d) => d.kind === "videoinput"), inUse(this.media.cameraTrack, "video"), "Camera");
  }

  destroy() {
    navigator.mediaDevices?.removeEventListener?.("devicechange", this._onDeviceChange);
    this._offChange();
    this._meter.stop();
  }
}

/** A <meter> showing the microphone's level (a WebAudio analyser on a clone of the track). */
export class LevelMeter {
  constructor(meter) {
    this.meter = meter;
    this.ctx = null;
    this.track = null;
    this.clone = null;
    this.timer = null;
  }

  listen(track) {
    if (track === this.track) return;
    this.stop();
    this.track = track;
    if (!track || !window.AudioContext) return;
    try {
      this.ctx = new AudioContext();
      this.clone = track.clone();
      this.clone.enabled = true; // the level shows even while muted: "is my mic working?"
      const source = this.ctx.createMediaStreamSource(new MediaStream([this.clone]));
      const analyser = this.ctx.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser);
      const buffer = new Float32Array(analyser.fftSize);
      if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
      this.timer = setInterval(() => {
        analyser.getFloatTimeDomainData(buffer);
        let peak = 0;
        for (const v of buffer) peak = Math.max(peak, Math.abs(v));
        this.meter.value = Math.min(1, peak);
      }, METER_EVERY_MS);
    } catch (err) {
      console.warn("parley: level meter", err);
    }
  }

  stop() {
    clearInterval(this.timer);
    if (this.clone) this.clone.stop();
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = this.clone = this.track = null;
    this.meter.value = 0;
  }
}
