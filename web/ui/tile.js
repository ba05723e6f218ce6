// One participant's tile: video, avatar when the camera is off, name, mute and
// screen-share badges, and the connection-state indicator.

import { el, icon } from "./dom.js";
import { initialsOf, peerHue, peerLabel } from "../names.js";

const STATE_TEXT = {
  new: "Connecting…",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  failed: "Connection failed, retrying…",
  closed: "Disconnected",
};

export class Tile {
  /**
   * @param {object} o
   * @param {string} o.id     peer id, or "self"
   * @param {boolean} o.self  my own tile (muted, mirrored, no data-peer-id)
   * @param {(id: string) => void} [o.onPin]  the tile's "Pin" button was pressed
   */
  constructor({ id, self = false, onPin = () => {} }) {
    this.id = id;
    this.self = self;
    this.name = self ? "You" : peerLabel(id);
    this.media = { audio: true, video: true, screen: false };
    this.firstFrame = false;

    this.video = el("video", { autoplay: true, playsInline: true, muted: self });
    if (!self) this.video.dataset.peerId = id;
    this.initials = el("span", { className: "initials", "aria-hidden": "true" });
    this.avatar = el("div", { className: "avatar", hidden: true }, this.initials);
    this.avatar.style.setProperty("--hue", String(self ? 215 : peerHue(id)));
    this.dot = el("span", { className: "dot", "aria-hidden": "true" });
    this.stateText = el("span", { className: "state-text" });
    this.muteBadge = el("span", { className: "pill muted", hidden: true, title: "Muted" },
      icon("mic-off"), el("span", { className: "sr-only", text: "muted" }));
    this.screenBadge = el("span", { className: "pill screen", hidden: true },
      icon("screen"), el("span", { text: "Sharing screen" }));
    this.status = el("div", { className: "tile-status", hidden: self });
    this.status.append(this.dot, this.stateText);
    this.pinButton = el("button", { type: "button", className: "pin", "aria-pressed": "false" }, icon("pin"));
    this.pinButton.addEventListener("click", () => onPin(this.id));
    this.fullButton = el("button", { type: "button", className: "full" }, icon("expand"));
    this.fullButton.addEventListener("click", () => this.toggleFullscreen());
    this.fullButton.hidden = !document.fullscreenEnabled;
    this.root = el("div", { className: "tile", role: "listitem" },
      this.video, this.avatar,
      el("div", { className: "tile-actions" }, this.pinButton, this.fullButton),
      el("div", { className: "tile-bar" },
        this.nameTag = el("span", { className: "name" }), this.muteBadge, this.screenBadge),
      this.status);
    this.root.classList.toggle("self", self);
    this.setName(this.name);
    if (!self) this.setState("connecting");
  }

  /** The label shown on the tile, its avatar's initials, and the video's accessible name. */
  setName(label) {
    this.name = label;
    const shown = this.self ? `${label} (you)` : label;
    this.nameTag.textContent = shown;
    this.initials.textContent = initialsOf(label);
    this.root.setAttribute("aria-label", shown);
    this.video.setAttribute("aria-label", this.self ? `${label} (you), your camera` : `${label}'s video`);
    this._labelActions();
  }

  /** Pinned tiles take the stage (callview decides); the button shows the state. */
  setPinned(pinned) {
    this.pinned = pinned;
    this.pinButton.setAttribute("aria-pressed", String(pinned));
    this._labelActions();
  }

  /** Show this tile full screen, or leave full screen. */
  toggleFullscreen() {
    if (document.fullscreenElement === this.root) {
      document.exitFullscreen().catch(() => {});
    } else {
      this.root.requestFullscreen().catch((err) => console.warn("parley: full screen", err));
    }
  }

  _labelActions() {
    const who = this.self ? "yourself" : this.name;
    this.pinButton.setAttribute("aria-label", `Pin ${who}`);
    this.pinButton.title = this.pinned ? `Unpin ${who}` : `Pin ${who}`;
    this.fullButton.setAttribute("aria-label", `Show ${who} full screen`);
    this.fullButton.title = `Show ${who} full screen`;
  }

  /** Show `stream` (remote audio + video, or my own preview). */
  setStream(stream) {
    if (this.video.srcObject !== stream) this.video.srcObject = stream;
    const played = this.video.play();
    if (played) played.catch(() => {}); // autoplay may wait for a click; the video still shows
    if (!this.self && !this.firstFrame && "requestVideoFrameCallback" in this.video) {
      this.video.requestVideoFrameCallback(() => {
        this.firstFrame = true;
        performance.mark(`parley:first-frame:${this.id}`);
      });
    }
  }

  /** Remote (or my) media state: {audio, video, screen}. */
  setMedia(media) {
    this.media = { ...media };
    const showsVideo = media.video || media.screen;
    this.avatar.hidden = showsVideo;
    this.video.classList.toggle("hidden", !showsVideo);
    this.muteBadge.hidden = media.audio;
    this.screenBadge.hidden = !media.screen;
    this.root.classList.toggle("screen", Boolean(media.screen));
    this.root.classList.toggle("mirror", this.self && !media.screen);
  }

  /** Connection state from PeerLink. */
  setState(state) {
    this.state = state;
    this._renderStatus();
  }

  /** The active-speaker ring (speaker.js). */
  setSpeaking(speaking) {
    this.root.classList.toggle("speaking", speaking);
  }

  /** "poor" or "good" (quality.js): a poor connection says so on the tile. */
  setQuality(quality) {
    this.quality = quality;
    this._renderStatus();
  }

  _renderStatus() {
    const poor = this.state === "connected" && this.quality === "poor";
    this.root.dataset.state = this.state;
    this.root.classList.toggle("poor", poor);
    this.stateText.textContent = poor ? "Poor connection" : STATE_TEXT[this.state] || this.state;
    this.status.classList.toggle("ok", this.state === "connected" && !poor);
  }

  remove() {
    this.video.srcObject = null;
    this.root.remove();
  }
}
