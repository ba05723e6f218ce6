// Who is speaking: audio levels of my microphone (a WebAudio analyser on a clone of the
// track, so it hears me even while muted) and of each remote participant (getStats
// `audioLevel` of the inbound audio). Speaking tiles get a ring; a muted person who speaks
// is told "You are muted".

const EVERY_MS = 150;
const SPEAKING_LEVEL = 0.03; // 0..1, roughly -30 dBFS
const HOLD_MS = 900; // the ring stays this long after the last loud sample
const MUTED_HINT_LOUD_SAMPLES = 3; // loud samples within MUTED_WINDOW_MS while muted
const MUTED_WINDOW_MS = 3000;
const MUTED_HINT_EVERY_MS = 30_000;

/** RMS level 0..1 of the time-domain samples of `analyser`. */
function rms(analyser, buffer) {
  analyser.getFloatTimeDomainData(buffer);
  let sum = 0;
  for (const v of buffer) sum += v * v;
  return Math.sqrt(sum / buffer.length);
}

/** Remote audio level of one RTCPeerConnection (0..1), or 0 if none yet. */
/** The loudest inbound audio of `pc` (an RTCPeerConnection, or one RTCRtpReceiver). */
async function remoteLevel(pc) {
  let level = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio" && typeof s.audioLevel === "number") {
      level = Math.max(level, s.audioLevel);
    }
  });
  return level;
}

export class SpeakerWatch {
  /**
   * @param {object} o
   * @param {import("./call.js").Call} o.call
   * @param {(id: string, speaking: boolean) => void} o.onSpeaking  id "self" for me
   * @param {() => void} o.onMutedSpeech  I spoke while muted
   */
  constructor({ call, onSpeaking, onMutedSpeech }) {
    this.call = call;
    this.onSpeaking = onSpeaking;
    this.onMutedSpeech = onMutedSpeech;
    this.loudUntil = new Map(); // id -> ms until which the ring holds
    this.shown = new Set();
    this.mutedLoud = []; // times of loud samples while muted
    this.lastHint = -Infinity;
    this.ctx = null;
    this.analyser = null;
    this.source = null;
    this.clone = null;
    this.buffer = null;
    this.timer = setInterval(() => this.sample(), EVERY_MS);
  }

  /** Listen to `track` (my microphone), or to nothing. */
  _listenTo(track) {
    if (this.clone && this.origin === track) return;
    this._stopLocal();
    this.origin = track;
    if (!track || !window.AudioContext) return;
    try {
      this.ctx = this.ctx || new AudioContext();
      this.clone = track.clone();
      this.clone.enabled = true; // hear myself even when the sent track is muted
      this.source = this.ctx.createMediaStreamSource(new MediaStream([this.clone]));
      this.analyser = this.ctx.createAnalyser();
      this.analyser.fftSize = 1024;
      this.buffer = new Float32Array(this.analyser.fftSize);
      this.source.connect(this.analyser);
      if (this.ctx.state === "suspended") this.ctx.resume().catch(() => {});
    } catch (err) {
      console.warn("parley: level meter", err);
      this._stopLocal();
    }
  }

  _stopLocal() {
    if (this.source) this.source.disconnect();
    if (this.clone) this.clone.stop();
    this.source = this.analyser = this.clone = null;
  }

  async sample() {
    const now = performance.now();
    const media = this.call.media;
    this._listenTo(media.audioTrack);
    const levels = new Map();
    if (this.analyser) levels.set("self", rms(this.analyser, this.buffer) * 2); // RMS → ~peak
    const muted = !media.state.audio;
    if (muted && (levels.get("self") || 0) >= SPEAKING_LEVEL) {
      this.mutedLoud = this.mutedLoud.filter((t) => now - t < MUTED_WINDOW_MS);
      this.mutedLoud.push(now);
      if (this.mutedLoud.length >= MUTED_HINT_LOUD_SAMPLES && now - this.lastHint > MUTED_HINT_EVERY_MS) {
        this.lastHint = now;
        this.mutedLoud = [];
        this.onMutedSpeech();
      }
    }
    if (muted) levels.delete("self"); // no ring for what nobody hears
    const sources = this.call.audioSources ? this.call.audioSources() : this.call.connections();
    await Promise.all(Object.entries(sources).map(async ([id, pc]) => {
      try {
        levels.set(id, await remoteLevel(pc));
      } catch {
        /* closed meanwhile */
      }
    }));
    for (const [id, level] of levels) {
      if (level >= SPEAKING_LEVEL) this.loudUntil.set(id, now + HOLD_MS);
    }
    for (const id of new Set([...this.loudUntil.keys(), ...this.shown])) {
      const speaking = (this.loudUntil.get(id) || 0) > now && (id !== "self" || !muted);
      if (speaking !== this.shown.has(id)) {
        if (speaking) this.shown.add(id);
        else this.shown.delete(id);
        this.onSpeaking(id, speaking);
      }
    }
  }

  stop() {
    clearInterval(this.timer);
    this._stopLocal();
    if (this.ctx) this.ctx.close().catch(() => {});
  }
}
