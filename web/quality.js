// Connection quality per remote participant, from getStats() every few seconds: a tile whose
// connection is poor says so (high round-trip time or lost packets), as Meet and Jitsi do.

const EVERY_MS = 2000;
const POOR_RTT_S = 0.8; // round trip over 800 ms: talking over each other
const POOR_LOSS = 0.1; // one packet in ten lost since the last sample

/** "poor" or "good" for one sample: `rtt` seconds, `lossRatio` 0..1 (either may be null). */
export function classify({ rtt = null, lossRatio = null }) {
  if (rtt !== null && rtt >= POOR_RTT_S) return "poor";
  if (lossRatio !== null && lossRatio >= POOR_LOSS) return "poor";
  return "good";
}

/** Round trip of the selected candidate pair and packet counters of inbound RTP. */
export function readStats(report) {
  let pairId = null;
  let nominated = null;
  let received = 0;
  let lost = 0;
  report.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") nominated = s;
    if (s.type === "inbound-rtp") {
      received += s.packetsReceived || 0;
      lost += Math.max(0, s.packetsLost || 0);
    }
  });
  const pair = (pairId && report.get(pairId)) || nominated;
  const rtt = pair && typeof pair.currentRoundTripTime === "number" ? pair.currentRoundTripTime : null;
  return { rtt, received, lost };
}

/** Samples every connection of `call`; calls `onChange(id, quality)` when one changes. */
export class QualityWatch {
  constructor(call, onChange) {
    this.call = call;
    this.onChange = onChange;
    this.last = new Map(); // id -> {received, lost, quality}
    this.timer = setInterval(() => this.sample(), EVERY_MS);
  }

  async sample() {
    for (const [id, pc] of Object.entries(this.call.connections())) {
      if (pc.connectionState !== "connected") continue;
      let now;
      try {
        now = readStats(await pc.getStats());
      } catch {
        continue;
      }
      const before = this.last.get(id) || { received: 0, lost: 0, quality: "good" };
      const got = now.received - before.received;
      const missed = now.lost - before.lost;
      const lossRatio = got + missed > 50 ? missed / (got + missed) : null;
      const quality = classify({ rtt: now.rtt, lossRatio });
      this.last.set(id, { ...now, quality });
      if (quality !== before.quality) this.onChange(id, quality);
    }
  }

  stop() {
    clearInterval(this.timer);
  }
}
