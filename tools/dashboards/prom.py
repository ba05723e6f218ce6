"""A throwaway Prometheus server (Debian's `prometheus`) scraping given targets, and the
few HTTP API calls the tests and the renderer make to it."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from services.common.infra import free_port


class PrometheusError(Exception):
    """Prometheus could not start, or answered a query with an error."""


def find(name: str = "prometheus") -> str | None:
    """Path of `prometheus` or `promtool` on PATH, or None."""
    return shutil.which(name)


class PrometheusApi:
    """The few HTTP API calls made to a Prometheus at `url`."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the `data` of a success.

        Raises:
            PrometheusError: the query failed (bad PromQL, unknown function...).
        """
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
        data = self.api("query", **params)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [
            {"metric": {}, "value": data["result"]}]
        return result

    def query_range(self, expr: str, start: float, end: float,
                    step: float) -> list[dict[str, Any]]:
        """A range query's result matrix."""
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}",
                        step=f"{step:g}")
        return list(data["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        """Values of `label` on the series matching `match` (Grafana's label_values())."""
        return list(self.api(f"label/{label}/values", **{"match[]": match}))

    def targets_up(self) -> dict[str, bool]:
        """scrape URL -> whether its last scrape worked."""
        active = self.api("targets")["activeTargets"]
        return {t["scrapeUrl"]: t["health"] == "up" for t in active}


class Prometheus(PrometheusApi):
    """`prometheus` on a free loopback port with its own config and storage."""

    def __init__(self, jobs: Mapping[str, Sequence[str]], *, interval: str = "1s",
                 rule_files: Sequence[Path] = (), binary: str | None = None) -> None:
        """Args:
            jobs: job name -> `host:port` targets whose /metrics are scraped.
            interval: scrape (and rule evaluation) interval.
            rule_files: rule files to load.
        """
        found = binary or find()
        if not found:
            raise PrometheusError("prometheus is not on PATH (Debian: apt-get install prometheus)")
        self.binary = found
        self.dir = Path(tempfile.mkdtemp(prefix="parley-prometheus-"))
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(ts)}]}
                               for job, ts in jobs.items()],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Prometheus:
        log = (self.dir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=2h"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited:\n{self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise PrometheusError(f"prometheus not ready in {timeout:.0f}s:\n{self.log()[-2000:]}")

    def log(self) -> str:
        path = self.dir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
