"""Pictures of the Grafana dashboards for docs/operations.md, without Grafana: the same
queries, run as range queries against a live Prometheus, plotted with matplotlib in the
dashboards' own layout (two panels a row).

    pip install -e '.[dashboards]'
    python -m tools.dashboards.render                   # parley dev + Prometheus + a load
    python -m tools.dashboards.render --prometheus URL  # any Prometheus scraping Parley

Without --prometheus it starts `parley dev` and Debian's `prometheus` (scraping every
service each second), drives a varying load for --seconds (calls through signalling,
beacons, WebRTC calls through the relay with `parley relay probe`), then plots the window.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from tools.dashboards import promql
from tools.dashboards.load import beacon, call, join, relay_clients, relay_probe
from tools.dashboards.prom import Prometheus, PrometheusApi

ROOT: Final = Path(__file__).resolve().parents[2]
OUT: Final = ROOT / "docs" / "img"
_SCALE: Final[dict[str, tuple[float, str]]] = {
    "percentunit": (100.0, "%"), "s": (1.0, "seconds"), "Bps": (1.0, "bytes/s"),
    "pps": (1.0, "packets/s"), "reqps": (1.0, "per second"), "short": (1.0, ""),
}


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """Grafana's legendFormat: `{{label}}` replaced by the series' label."""
    out = fmt
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out.replace("{{", "").replace("}}", "") or "series"


def plot(prom: PrometheusApi, board: dict[str, Any], start: float, end: float, out: Path,
         rate_interval: str) -> Path:
    """One dashboard as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from datetime import UTC, datetime

    values = {"__rate_interval": rate_interval, **promql.constants(board)}
    relays = prom.label_values("instance", "parley_relay_allocations")
    values["relay"] = "|".join(relays) if relays else ".*"
    panels = board["panels"]
    rows = math.ceil(len(panels) / 2)
    fig, axes = plt.subplots(rows, 2, figsize=(14, 3.3 * rows), squeeze=False)
    step = max(1.0, (end - start) / 300)
    for i, panel in enumerate(panels):
        ax = axes[i // 2][i % 2]
        ax.set_title(panel["title"], fontsize=10, loc="left")
        if panel["type"] == "text":
            ax.axis("off")
            ax.text(0.02, 0.5, panel["options"]["content"], wrap=True, fontsize=9,
                    va="center", transform=ax.transAxes)
            continue
        unit = panel["fieldConfig"]["defaults"].get("unit", "short")
        scale, label = _SCALE.get(unit, (1.0, unit))
        peak = floor = None
        drawn = [(t, series) for t in panel["targets"]
                 for series in prom.query_range(promql.expand(t["expr"], values),
                                                start, end, step)]
        if len(drawn) > 6:  # e.g. STUN errors by code: leave out the codes that never came
            drawn = [(t, series) for t, series in drawn
                     if any(float(v) != 0 for _, v in series["values"])] or drawn[:1]
        for t, series in drawn:
            xs = [datetime.fromtimestamp(float(ts), UTC) for ts, _ in series["values"]]
            ys = [float(v) * scale for _, v in series["values"]]
            good = [y for y in ys if math.isfinite(y)]
            if good:
                peak = max(good + ([peak] if peak is not None else []))
                positive = [y for y in good if y > 0]
                if positive:
                    floor = min(positive + ([floor] if floor is not None else []))
            ax.plot(xs, ys, linewidth=1.4,
                    label=legend(t.get("legendFormat", ""), series["metric"]))
        if peak is not None and floor is not None and peak / floor > 1e3:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_ylabel(label, fontsize=8)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left")
    for j in range(len(panels), rows * 2):
        axes[j // 2][j % 2].axis("off")
    fig.suptitle(f"{board['title']}  (rendered from Prometheus, {int(end - start)} s window)",
                 fontsize=12, x=0.01, ha="left")
    fig.tight_layout()
    path = out / f"dashboard-{board['uid']}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _drive(port: int, seconds: float, relay: tuple[str, int, str] | None) -> None:
    """A load that rises and falls: rooms created and calls of one to four people held a
    few seconds, beacons and a few refused ones, and relay traffic (coturn's uclient
    holding allocations for seconds, else `parley relay probe` calls), in threads."""
    rng = random.Random(7)
    end = time.monotonic() + seconds
    relayers: list[threading.Thread] = []

    def relay_load(clients: int) -> None:
        assert relay is not None
        host, turn_port, secret = relay
        answer = join(port, f"relay-{rng.randrange(1 << 30):x}")
        creds = next(s for s in answer["ice_servers"] if "username" in s)
        if not relay_clients(host, turn_port, creds["username"], creds["credential"],
                             clients=clients, messages=rng.randrange(100, 300)):
            relay_probe(host, turn_port, secret)

    async def run() -> None:
        tasks: set[asyncio.Task[None]] = set()
        next_relay = 0.0
        while time.monotonic() < end:
            phase = 1 - abs(1 - 2 * (end - time.monotonic()) / seconds)  # 0 -> 1 -> 0
            for _ in range(1 + int(3 * phase)):
                task = asyncio.create_task(call(port, hold=rng.uniform(2, 12),
                                                peers=rng.choice((1, 2, 2, 3, 4)),
                                                create=rng.random() < 0.5))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            for _ in range(int(6 * phase) + 1):
                await asyncio.to_thread(beacon, port, valid=rng.random() > 0.1)
            if relay and time.monotonic() >= next_relay:
                next_relay = time.monotonic() + rng.uniform(4, 10)
                thread = threading.Thread(target=relay_load, args=(1 + int(4 * phase),),
                                          daemon=True)
                thread.start()
                relayers.append(thread)
            await asyncio.sleep(1.0)
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    for thread in relayers:
        thread.join(120)


def _live(seconds: float, out: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    from services.statedir import StateDir
    from tests.stack import start_stack

    data = Path(tempfile.mkdtemp(prefix="parley-render-")) / "state"
    # one client address drives everything: allow it more joins and sockets than a person
    stack = start_stack(data_dir=data, env={
        "PARLEY_JOIN_RATE": "15", "PARLEY_JOIN_BURST": "40", "PARLEY_CONNECT_RATE": "30",
        "PARLEY_METRICS_RATE": "4", "PARLEY_METRICS_BURST": "20"})
    try:
        jobs = {}
        for key, url in stack.run_env().items():
            if key.endswith("_INTERNAL_URL") and url.startswith("http://"):
                job = key.removeprefix("PARLEY_").removesuffix("_INTERNAL_URL").lower()
                jobs[job] = [url.removeprefix("http://")]
        secret = StateDir(data).read(data / "parley.env")["PARLEY_TURN_SECRET"]
        turn = next(u for s in join(stack.port, "render-probe")["ice_servers"]
                    for u in s["urls"] if u.startswith("turn:"))
        host, port = urllib.parse.urlsplit(turn.replace("turn:", "turn://")).netloc.rsplit(":", 1)
        with Prometheus(jobs, interval="2s") as prom:
            start = time.time()
            _drive(stack.port, seconds, (host, int(port), secret))
            time.sleep(6)  # the last scrapes
            end = time.time()
            return [plot(prom, board, start, end, out, "20s")
                    for board in promql.load().values()]
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", help="URL of a Prometheus scraping Parley")
    parser.add_argument("--seconds", type=float, default=150.0, help="load / window length")
    parser.add_argument("--rate-interval", default="1m",
                        help="$__rate_interval with --prometheus")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.prometheus:
        end = time.time()
        paths = [plot(PrometheusApi(args.prometheus), board, end - args.seconds, end, args.out,
                      args.rate_interval) for board in promql.load().values()]
    else:
        paths = _live(args.seconds, args.out)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
