"""`parley dev`: the whole stack on one machine, each service its own process.

Starts NATS (JetStream) and Redis on free ports (embedded, see `services.common.infra`),
then every service that this build has, waits for each one's `/readyz`, and prints the URL.
Ctrl-C (or SIGTERM) stops every child and nothing is left running; a child that dies is
reported by name and stops the stack with a non-zero exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Final

from services.common.infra import InfraError, NatsServer, RedisServer, free_port

READY_TIMEOUT: Final[float] = 30.0
STOP_TIMEOUT: Final[float] = 10.0
PR_SET_PDEATHSIG: Final[int] = 1


class DevStackError(RuntimeError):
    """The stack could not start; the message says which part and why."""


def _die_with_parent() -> None:
    """In the child: get SIGTERM if `parley dev` itself dies (Linux), so nothing lingers."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@dataclass
class Child:
    """One service process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str | None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class DevStack:
    """NATS + Redis + services, supervised."""

    host: str = "127.0.0.1"
    port: int = 8080
    signaling_replicas: int = 1
    relay: bool = True
    force_relay: bool = False
    children: list[Child] = field(default_factory=list)
    metrics_key: str | None = None
    _stop: bool = False

    def _env(
        self, nats: NatsServer, redis: RedisServer, secrets_: dict[str, str]
    ) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PARLEY_NATS_URL": nats.url,
                "PARLEY_REDIS_URL": redis.url,
                "PARLEY_TOKEN_KEY": secrets_["token"],
                "PARLEY_HASH_KEY": secrets_["hash"],
                "PARLEY_TURN_SECRET": secrets_["turn"],
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.force_relay:
            env["PARLEY_FORCE_RELAY"] = "true"
        return env

    def plan(self, nats: NatsServer, redis: RedisServer) -> list[Child]:
        """The service processes to start, with their ports and environment."""
        secrets_ = {
            k: os.environ.get(f"PARLEY_{k.upper()}_KEY") or secrets.token_urlsafe(32)
            for k in ("token", "hash")
        }
        secrets_["turn"] = os.environ.get("PARLEY_TURN_SECRET") or secrets.token_urlsafe(32)
        base = self._env(nats, redis, secrets_)
        py = [sys.executable, "-m", "services"]
        children: list[Child] = []
        signaling_urls: list[str] = []
        if _has("services.signaling.app"):
            for i in range(self.signaling_replicas):
                p = free_port(self.host)
                children.append(
                    Child(
                        f"signaling-{i + 1}",
                        [*py, "signaling", "--host", self.host, "--port", str(p)],
                        base,
                        f"http://{self.host}:{p}/readyz",
                    )
                )
                signaling_urls.append(f"ws://localhost:{p}/ws")
        if self.relay and _has("services.relay.cli"):
            udp = free_port(self.host, udp_too=True)
            http = free_port(self.host)
            relay_env = dict(base, PARLEY_RELAY_SECRET=secrets_["turn"])
            children.append(
                Child(
                    "relay",
                    [
                        *py,
                        "relay",
                        "--listen",
                        f"{self.host}:{udp}",
                        "--relay-ip",
                        self.host,
                        "--workers",
                        "1",
                        "--nats-url",
                        nats.url,
                        "--http-port",
                        str(http),
                    ],
                    relay_env,
                    f"http://{self.host}:{http}/readyz",
                )
            )
        if _has("services.logpurge.app"):
            p = free_port(self.host)
            children.append(Child(
                "logpurge", [*py, "logpurge", "--host", self.host, "--port", str(p)],
                base, f"http://{self.host}:{p}/healthz"))
        metrics_url = None
        if _has("services.metrics.app"):
            p = free_port(self.host)
            menv = dict(base)
            if not menv.get("PARLEY_METRICS_API_KEYS"):
                self.metrics_key = secrets.token_urlsafe(32)
                menv["PARLEY_METRICS_API_KEYS"] = self.metrics_key
            menv.setdefault("PARLEY_METRICS_ALLOWED_ORIGINS",
                            f"http://localhost:{self.port},http://127.0.0.1:{self.port}")
            menv.setdefault("PARLEY_METRICS_PERIOD", "day")
            menv.setdefault("PARLEY_METRICS_INCLUDE_CURRENT_PERIOD", "true")  # /stats shows today
            children.append(Child(
                "metrics", [*py, "metrics", "--host", self.host, "--port", str(p)],
                menv, f"http://{self.host}:{p}/readyz"))
            metrics_url = f"http://localhost:{p}"
        rooms_env = dict(base)
        if metrics_url:
            rooms_env["PARLEY_METRICS_URL"] = metrics_url
        if signaling_urls:
            rooms_env["PARLEY_SIGNALING_URL"] = ",".join(signaling_urls)
        children.insert(
            0,
            Child(
                "rooms",
                [*py, "rooms", "--host", self.host, "--port", str(self.port)],
                rooms_env,
                f"http://{self.host}:{self.port}/readyz",
            ),
        )
        return children

    def _wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stop:
            code = child.exited()
            if code is not None:
                raise DevStackError(f"{child.name} exited with code {code} while starting")
            if child.ready_url is None:
                return
            with (
                contextlib.suppress(Exception),
                urllib.request.urlopen(child.ready_url, timeout=1) as r,
            ):
                if r.status == 200:
                    return
            time.sleep(0.1)
        if not self._stop:
            raise DevStackError(f"{child.name} was not ready within {READY_TIMEOUT:.0f}s")

    def _wait_relay_registered(self) -> None:
        """Wait until rooms has heard the relay's heartbeat, so the first join gets TURN."""
        url = f"http://{self.host}:{self.port}/readyz"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stop:
            with (
                contextlib.suppress(Exception),
                urllib.request.urlopen(url, timeout=1) as r,
            ):
                if json.load(r).get("relays", 0) > 0:
                    return
            time.sleep(0.1)
        if not self._stop:
            raise DevStackError("rooms heard no relay heartbeat within "
                                f"{READY_TIMEOUT:.0f}s (is NATS reachable from the relay?)")

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = True

    def run(self) -> int:
        """Start everything, supervise until Ctrl-C or a crash; return the exit code."""
        if not self._port_free():
            raise DevStackError(
                f"port {self.port} is in use on {self.host}; pick another with --port"
            )
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        nats = redis = None
        code = 0
        try:
            try:
                nats = NatsServer().start()
                redis = RedisServer().start()
            except InfraError as exc:
                raise DevStackError(str(exc)) from exc
            self.children = self.plan(nats, redis)
            for child in self.children:
                child.start()
            for child in self.children:
                self._wait_ready(child)
            if any(c.name == "relay" for c in self.children):
                self._wait_relay_registered()
            if not self._stop:
                names = ", ".join(c.name for c in self.children)
                print(f"  nats {nats.url}  redis {redis.url}", flush=True)
                if self.metrics_key:
                    print(f"  metrics API key (made for this run): {self.metrics_key}", flush=True)
                print(
                    f"Parley is running at http://localhost:{self.port}  ({names}; Ctrl-C stops)",
                    flush=True,
                )
            while not self._stop:
                for child in self.children:
                    rc = child.exited()
                    if rc is not None:
                        print(
                            f"parley dev: {child.name} exited with code {rc}; stopping",
                            file=sys.stderr,
                            flush=True,
                        )
                        code = 1
                        self._stop = True
                        break
                time.sleep(0.2)
        finally:
            self._shutdown(nats, redis)
        return code

    def _port_free(self) -> bool:
        import socket

        with socket.socket() as s:
            try:
                s.bind((self.host, self.port))
            except OSError:
                return False
        return True

    def _shutdown(self, nats: NatsServer | None, redis: RedisServer | None) -> None:
        for child in self.children:
            child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children:
            child.wait_or_kill(deadline)
        for srv in (redis, nats):
            if srv is not None:
                srv.stop()
