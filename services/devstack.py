"""`parley dev` / `parley serve`: the whole stack on one machine, each service a process.

Starts NATS (JetStream) and Redis on free loopback ports (embedded, see
`services.common.infra`), then every service that this build has on loopback ports, and
the gateway (`services.gateway`) on the one public port with the Ingress's path routing,
waits for each one's `/readyz`, and prints the URL. Keys and the running stack's
addresses live in the state dir (`services.statedir`), where the admin commands find them.
Ctrl-C (or SIGTERM) stops every child and nothing is left running.

The stack heals itself: a child that dies (any service, NATS or Redis) is started again
after a backoff (`services.restartpolicy`: 0.5 s doubling to 30 s, from 0.5 s again once it
stayed up a minute), with one line naming it. NATS comes back on the same port with the same
config, users and JetStream files; Redis on the same port with the same ACL file, empty
(it persists nothing). `exit_on_crash` (`--exit-on-crash`)
instead stops the whole stack, naming the child, and exits 1.

Nothing is left behind when the stack itself is killed (even SIGKILL): every child, NATS
and Redis included, gets SIGTERM from the kernel when its parent dies (PR_SET_PDEATHSIG),
and NATS's and Redis's folders are in the state dir, `run/<pid>/`, not in /tmp: removed at
stop, and removed by the next start when the stack could not do it itself.

`relays` (`--relays N`) starts N relays, each with its own ports and relay id: one is the
child `relay`, several are `relay-1` … `relay-N` (ids `dev-relay`, `dev-relay-1` …).
Every child's pid (and a relay's TURN port) is in `run/<pid>/children.json`, rewritten at
every (re)start, so a fault-injection harness can kill one by name (`running_children`);
while `run/<pid>/hold/<name>` exists, that child is not restarted (a relay whose machine is
gone), and it is started again once the file is removed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from services.common.authinfra import (
    CREDENTIALS_FILE,
    MAX_DEV_SFUS,
    dev_child_env,
    start_dev,
)
from services.common.infra import (
    EmbeddedServer,
    InfraError,
    NatsServer,
    RedisServer,
    die_with_parent,
    free_port,
    reserve_port,
)
from services.restartpolicy import RestartPolicy, restart_line
from services.statedir import StateDir, StateDirError

READY_TIMEOUT: Final[float] = 30.0
#: The relayed port range of the dev relay; its listener is picked outside it, so that no
#: allocation can ever address the listener as a relayed port (a TURN loop).
RELAY_PORTS: Final[tuple[int, int]] = (49152, 65535)
STOP_TIMEOUT: Final[float] = 10.0
RUNS_DIR: Final[str] = "run"  # in the state dir: run/<pid>/{nats,redis}
CHILDREN_FILE: Final[str] = "children.json"  # in run/<pid>/: every child's pid, by name
HOLD_DIR: Final[str] = "hold"  # in run/<pid>/: a file named for a child keeps it down
DEV_RELAY_HEARTBEAT: Final[float] = 1.0  # s: rooms notices a dead relay within ~3 s
INTERNAL: Final[str] = "127.0.0.1"  # every service but the gateway and the relay listens here
TRUSTED_LOOPBACK: Final[tuple[str, ...]] = ("127.0.0.1/32", "::1/128")  # the gateway


class DevStackError(RuntimeError):
    """The stack could not start; the message says which part and why."""


def port_outside(host: str, low: int, high: int, *, udp_too: bool = True,
                 attempts: int = 200) -> int:
    """A port free on `host` (TCP, and UDP too by default) that is not in `low`-`high`."""
    for _ in range(attempts):
        port = free_port(host, udp_too=udp_too)
        if not low <= port <= high:
            return port
    raise DevStackError(f"no free port outside {low}-{high} on {host}")


def relayed_range(listeners: list[int]) -> tuple[int, int]:
    """`RELAY_PORTS`, or its larger part beside listening ports chosen inside it (--relay-port)."""
    low, high = RELAY_PORTS
    inside = sorted(p for p in listeners if low <= p <= high)
    if not inside:
        return low, high
    below, above = (low, inside[0] - 1), (inside[-1] + 1, high)
    return max(below, above, key=lambda r: r[1] - r[0])


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
    info: dict[str, object] = field(default_factory=dict)  # in children.json (relay ports)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,  # SIGTERM when `parley dev` dies, however
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
class Watched:
    """A supervised process: a service, NATS or Redis; `due` is when to restart it."""

    name: str
    poll: Callable[[], int | None]  # its exit code, None while it runs
    start: Callable[[], None]  # start it again (raises InfraError when it does not answer)
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    due: float | None = None  # None: running


def _server_poll(server: EmbeddedServer) -> Callable[[], int | None]:
    return lambda: None if server.proc is None else server.proc.poll()


@dataclass
class DevStack:
    """NATS + Redis + services behind the gateway, supervised.

    `host`/`port` is the public port (the gateway); services listen on loopback. The relay
    listens on `relay_host` (default: `host`; behind nginx or Caddy the gateway stays on
    loopback and the relay listens on 0.0.0.0), on `relay_port` (UDP and TCP) and, with
    TLS, `relay_tls_port`.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    signaling_replicas: int = 1
    relay: bool = True
    relays: int = 1  # relay processes, each with its own ports and relay id
    sfus: int = 1  # SFU processes (0: none; rooms then stay mesh), at most MAX_DEV_SFUS
    force_relay: bool = False
    data_dir: Path | None = None
    public_url: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    relay_public_host: str | None = None
    relay_host: str | None = None  # where the relay listens; None: `host`
    relay_port: int | None = None  # None: a free port (dev); serve uses 3478
    relay_tls_port: int | None = None  # None: a free port when TLS is on
    keep_jetstream: bool = False  # JetStream files in the state dir, kept across restarts
    extra_env: dict[str, str] = field(default_factory=dict)
    name: str = "parley dev"
    exit_on_crash: bool = False  # a dying child stops the stack (exit 1) instead of restarting
    external_turn: str | None = None  # an existing TURN server's URLs (space-separated)
    external_turn_secret: str | None = field(default=None, repr=False)  # its REST secret
    children: list[Child] = field(default_factory=list)
    metrics_key: str | None = None
    _made_metrics_key: bool = False
    _relay_ports: list[str] = field(default_factory=list)
    _run_dir: Path | None = None
    _servers: dict[str, EmbeddedServer] = field(default_factory=dict)
    _stop: bool = False

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def _env(self, nats: NatsServer, redis: RedisServer, keys: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PARLEY_EXTERNAL_TURN_SECRET", None)  # rooms alone gets it, as its own setting
        env.update(self.extra_env)
        env.update(keys)
        env.update({"PARLEY_NATS_URL": nats.url, "PARLEY_REDIS_URL": redis.url,
                    "PYTHONUNBUFFERED": "1"})
        if self.public_url:
            env["PARLEY_PUBLIC_URL"] = self.public_url
        if self.force_relay:
            env["PARLEY_FORCE_RELAY"] = "true"
        if self.sfus:  # its SFUs beat every second: a dead one is noticed in 3 (failover)
            env.setdefault("PARLEY_SFU_TTL", "3")
        return env

    def plan(self, nats: NatsServer, redis: RedisServer,
             keys: dict[str, str] | None = None) -> list[Child]:
        """The processes to start (gateway last), with their ports and environment."""
        if keys is None:
            keys = {k: os.environ.get(k) or secrets.token_urlsafe(32)
                    for k in ("PARLEY_TOKEN_KEY", "PARLEY_HASH_KEY", "PARLEY_TURN_SECRET")}
        base = self._env(nats, redis, keys)
        py = [sys.executable, "-m", "services"]
        children: list[Child] = []
        routes: dict[str, list[str]] = {}

        def service(name: str, argv: list[str], env: dict[str, str], ready: str) -> int:
            p = free_port(INTERNAL)
            children.append(Child(name, [*py, *argv, "--host", INTERNAL, "--port", str(p)],
                                  env, f"http://{INTERNAL}:{p}{ready}"))
            return p

        rooms_env = dict(base, PARLEY_TRUSTED_PROXIES=json.dumps(self._trusted_proxies()))
        rooms_env.pop("PARLEY_SIGNALING_URL", None)  # the gateway's /ws
        if self.external_turn:  # rooms hands it out; the built-in relay stays out
            rooms_env["PARLEY_TURN_SERVERS"] = json.dumps([self.external_turn])
            rooms_env["PARLEY_TURN_SERVER_SECRETS"] = json.dumps([self.external_turn_secret])
        if _has("services.signaling.app") and self.signaling_replicas > 0:
            sig_env = dict(base, PARLEY_TRUSTED_PROXIES=",".join(self._trusted_proxies()))
            routes["/ws"] = [
                f"{INTERNAL}:{service(f'signaling-{i + 1}', ['signaling'], sig_env, '/readyz')}"
                for i in range(self.signaling_replicas)]
        if self.relay and not self.external_turn and _has("services.relay.cli"):
            count = max(1, self.relays)
            for i in range(count):
                name = "relay" if count == 1 else f"relay-{i + 1}"
                children.append(self._relay_child(py, base, keys["PARLEY_TURN_SECRET"],
                                                  name=name, index=i))
        if _has("services.sfu.cli"):
            children += [self._sfu_child(py, base, i + 1)
                         for i in range(min(self.sfus, MAX_DEV_SFUS))]
        if _has("services.logpurge.app"):
            service("logpurge", ["logpurge"], base, "/healthz")
        if _has("services.metrics.app"):
            menv = dict(base, PARLEY_TRUSTED_PROXIES=",".join(self._trusted_proxies()))
            if not menv.get("PARLEY_METRICS_API_KEYS"):
                menv["PARLEY_METRICS_API_KEYS"] = secrets.token_urlsafe(32)
            self.metrics_key = menv["PARLEY_METRICS_API_KEYS"].split(",")[0]
            menv.setdefault("PARLEY_METRICS_PERIOD", "day")
            menv.setdefault("PARLEY_METRICS_INCLUDE_CURRENT_PERIOD", "true")  # /stats: today
            mp = service("metrics", ["metrics"], menv, "/readyz")
            for path in ("/beacon", "/reports", "/stats.json"):
                routes[path] = [f"{INTERNAL}:{mp}"]
            rooms_env["PARLEY_METRICS_URL"] = "self"  # the gateway routes the metrics paths
        rp = free_port(INTERNAL)
        children.insert(0, Child("rooms", [*py, "rooms", "--host", INTERNAL, "--port", str(rp)],
                                 rooms_env, f"http://{INTERNAL}:{rp}/readyz"))
        routes["/"] = [f"{INTERNAL}:{rp}"]
        children.append(self._gateway_child(py, base, routes))
        return children

    def _trusted_proxies(self) -> list[str]:
        """Loopback (the gateway, a proxy on this machine) and PARLEY_TRUSTED_PROXIES (a
        proxy elsewhere whose X-Forwarded-For the gateway keeps)."""
        raw = self.extra_env.get("PARLEY_TRUSTED_PROXIES") or os.environ.get(
            "PARLEY_TRUSTED_PROXIES", "")
        text = raw.strip()
        try:
            extra = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError as exc:
            raise DevStackError(f"PARLEY_TRUSTED_PROXIES: not a JSON list: {exc}") from exc
        return [*TRUSTED_LOOPBACK, *(str(c).strip() for c in extra if str(c).strip())]

    def _relay_child(self, py: list[str], base: dict[str, str], secret: str, *,
                     name: str = "relay", index: int = 0) -> Child:
        """A relay: listens on the public host; relayed sockets on loopback.

        Every peer of a room uses the same relay, so media only flows between this relay's
        own allocations and relayed addresses need not be reachable from outside: only the
        listening ports are. It announces `relay_public_host`, or 127.0.0.1, which rooms
        replaces with the address each browser's request came in on.
        """
        listen_host = self.relay_host or self.host
        if listen_host == "localhost":
            listen_host = INTERNAL
        # several relays with fixed ports (serve): the next ones on the following ports
        udp = self.relay_port + index if self.relay_port else port_outside(INTERNAL,
                                                                             *RELAY_PORTS)
        ports = f"UDP and TCP {udp}"
        http = free_port(INTERNAL)
        listeners = [udp]
        argv = [*py, "relay", "--listen", f"{_bracket(listen_host)}:{udp}",
                "--relay-ip", INTERNAL, "--workers", "1",  # NATS URL: env, never argv
                "--http-host", INTERNAL, "--http-port", str(http),
                "--heartbeat-interval", str(DEV_RELAY_HEARTBEAT)]
        if self.relay_public_host:
            argv += ["--public-host", self.relay_public_host]
        info: dict[str, object] = {"turn_port": udp}
        if self.tls:
            tls_port = (self.relay_tls_port + index if self.relay_tls_port
                        else port_outside(INTERNAL, *RELAY_PORTS, udp_too=False))
            ports += f", TLS {tls_port}"
            info["tls_port"] = tls_port
            listeners.append(tls_port)
            argv += ["--tls-listen", f"{_bracket(listen_host)}:{tls_port}",
                     "--tls-cert", str(self.tls_cert), "--tls-key", str(self.tls_key)]
        low, high = relayed_range(listeners)
        argv += ["--ports", f"{low}-{high}"]
        if self.sfus and _has("services.sfu.cli"):  # "always relay" reaches the SFUs
            sfu_host = self._sfu_announced()
            with contextlib.suppress(ValueError):
                net = ipaddress.ip_network(sfu_host)
                argv += ["--allow-peer", str(net)]
        env = dict(base, PARLEY_RELAY_SECRET=secret)
        if base.get("PARLEY_OTEL_EXPORTER"):  # the relay's settings have their own prefix
            env.setdefault("PARLEY_RELAY_OTEL_EXPORTER", base["PARLEY_OTEL_EXPORTER"])
        self._relay_ports.append(ports if name == "relay" else f"{name} {ports}")
        return Child(name, argv, env, f"http://{INTERNAL}:{http}/readyz", info=info)

    def _listen_host(self) -> str:
        host = self.relay_host or self.host
        return INTERNAL if host == "localhost" else host

    def _sfu_announced(self) -> str:
        """The address SFUs put in their answers (and the relay lets peers reach)."""
        host = self._listen_host()
        if self.relay_public_host:
            return self.relay_public_host
        if host not in ("0.0.0.0", "::"):
            return host
        return next(iter(_outward_addresses()), INTERNAL)

    def _sfu_child(self, py: list[str], base: dict[str, str], index: int) -> Child:
        """An SFU: one UDP port on the relay's listening host (browsers reach it there, or
        through the relay with "always relay"); its answers announce that address."""
        listen_host = self._listen_host()
        announced = self._sfu_announced()
        udp = port_outside(INTERNAL, *RELAY_PORTS)
        http = free_port(INTERNAL)
        argv = [*py, "sfu", "--listen", f"{_bracket(listen_host)}:{udp}",
                "--public-host", announced, "--http-host", INTERNAL, "--http-port", str(http),
                "--heartbeat-interval", "1", "--drain-deadline", "5"]
        return Child(f"sfu-{index}", argv, dict(base), f"http://{INTERNAL}:{http}/readyz")

    def _gateway_child(self, py: list[str], base: dict[str, str],
                       routes: dict[str, list[str]]) -> Child:
        argv = [*py, "gateway", "--listen", f"{_bracket(self.host)}:{self.port}"]
        for cidr in self._trusted_proxies():
            argv += ["--trusted-proxy", cidr]
        for prefix, ups in routes.items():
            argv += ["--route", f"{prefix}={','.join(ups)}"]
        if self.tls:
            argv += ["--tls-cert", str(self.tls_cert), "--tls-key", str(self.tls_key)]
        probe = INTERNAL if self.host in ("0.0.0.0", "::", "localhost") else self.host
        return Child("gateway", argv, base, f"tcp://{_bracket(probe)}:{self.port}")

    def _wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stop:
            code = child.exited()
            if code is not None:
                raise DevStackError(f"{child.name} exited with code {code} while starting")
            if child.ready_url is None or _ready(child.ready_url):
                return
            time.sleep(0.1)
        if not self._stop:
            raise DevStackError(f"{child.name} was not ready within {READY_TIMEOUT:.0f}s")

    def _wait_relay_registered(self) -> None:
        """Wait until rooms has heard every relay's heartbeat, so the first join gets TURN."""
        count = sum(1 for c in self.children if _is_relay(c.name))
        rooms = next(c for c in self.children if c.name == "rooms")
        url = rooms.ready_url or ""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stop:
            with (
                contextlib.suppress(Exception),
                urllib.request.urlopen(url, timeout=1) as r,
            ):
                if json.load(r).get("relays", 0) >= count:
                    return
            time.sleep(0.1)
        if not self._stop:
            raise DevStackError(f"rooms heard fewer than {count} relay heartbeats within "
                                f"{READY_TIMEOUT:.0f}s (is NATS reachable from the relay?)")

    def _wait_sfus_registered(self) -> None:
        """Wait until rooms has heard an SFU's heartbeat, so a room can switch to it."""
        rooms = next(c for c in self.children if c.name == "rooms")
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self._stop:
            with (
                contextlib.suppress(Exception),
                urllib.request.urlopen(rooms.ready_url or "", timeout=1) as r,
            ):
                if json.load(r).get("sfus", 0) > 0:
                    return
            time.sleep(0.1)
        if not self._stop:
            raise DevStackError(f"rooms heard no SFU heartbeat within {READY_TIMEOUT:.0f}s "
                                "(is NATS reachable from the SFU?)")

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = True

    def internal_urls(self) -> dict[str, str]:
        """`PARLEY_<SERVICE>_INTERNAL_URL`: each service's loopback address (its
        /metrics for Prometheus, /readyz), recorded in run.env."""
        out: dict[str, str] = {}
        for c in self.children:
            if c.ready_url and c.ready_url.startswith("http://"):
                name = c.name.upper().replace("-", "_")
                out[f"PARLEY_{name}_INTERNAL_URL"] = c.ready_url.rsplit("/", 1)[0]
        return out

    def public_urls(self) -> list[str]:
        """Where people open Parley: the public URL, else this machine's addresses."""
        if self.public_url:
            return [self.public_url]
        port = "" if (self.port, self.scheme) in ((80, "http"), (443, "https")) \
            else f":{self.port}"
        urls = [f"{self.scheme}://localhost{port}"]
        if self.host in ("0.0.0.0", "::"):  # one family each (asyncio sets IPV6_V6ONLY)
            urls += [f"{self.scheme}://{_bracket(a)}{port}" for a in _outward_addresses()
                     if (":" in a) == (self.host == "::")]
        elif self.host not in ("127.0.0.1", "localhost", "::1"):
            urls = [f"{self.scheme}://{_bracket(self.host)}{port}"]
        return urls

    def run(self) -> int:
        """Start everything, supervise until Ctrl-C (or a crash, with `exit_on_crash`);
        return the exit code."""
        if not self._port_free():
            raise DevStackError(
                f"port {self.port} is in use on {self.host}; pick another with --port"
            )
        # the ports given on the command line are not bound yet: no child may get one
        reserve_port(self.port, *(base + i for base in (self.relay_port, self.relay_tls_port)
                                  if base for i in range(max(1, self.relays))))
        state = StateDir(self.data_dir)
        try:
            self._made_metrics_key = not (
                os.environ.get("PARLEY_METRICS_API_KEYS")
                or state.read(state.keys_file).get("PARLEY_METRICS_API_KEYS"))
            keys = state.keys({**os.environ, **self.extra_env})
            run_dir = _fresh_run_dir(state.path / RUNS_DIR)
            self._run_dir = run_dir
        except (StateDirError, OSError) as exc:
            raise DevStackError(f"state dir: {exc}") from exc
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        nats = redis = None
        code = 0
        try:
            try:
                # a NATS and a Redis user per service (docs/least-privilege.md)
                servers = start_dev(store_dir=state.path / "nats" if self.keep_jetstream
                                    else None, workdir=run_dir, relays=self.relays)
                nats, redis = servers.nats, servers.redis
                self._servers = {"nats": nats, "redis": redis}
            except InfraError as exc:
                raise DevStackError(str(exc)) from exc
            self.children = self.plan(nats, redis, keys)
            for child in self.children:
                child.env = dev_child_env(servers, child.name, child.env)
            for child in self.children:
                child.start()
            self._record_children()
            for child in self.children:
                self._wait_ready(child)
            if any(_is_relay(c.name) for c in self.children):
                self._wait_relay_registered()
            if any(c.name.startswith("sfu-") for c in self.children):
                self._wait_sfus_registered()
            if not self._stop:
                # the admin commands (parley logpurge ...) act as logpurge
                state.write_run({"PARLEY_NATS_URL": servers.nats_url("logpurge"),
                                 **self.internal_urls()})
                self._announce(nats, redis, state)
            code = self._supervise([
                Watched("nats", _server_poll(nats), nats.respawn),
                Watched("redis", _server_poll(redis), redis.respawn),
                *(Watched(c.name, c.exited, c.start) for c in self.children)])
        finally:
            state.clear_run()
            self._shutdown(nats, redis)
            shutil.rmtree(run_dir, ignore_errors=True)
        return code

    def _supervise(self, watched: list[Watched]) -> int:
        """Until Ctrl-C: restart what dies (or, with `exit_on_crash`, stop: return 1)."""
        now = time.monotonic()
        for w in watched:
            w.policy.started(now)
        while not self._stop:
            for w in watched:
                now = time.monotonic()
                if w.due is None:
                    rc = w.poll()
                    if rc is None:
                        continue
                    if self.exit_on_crash:
                        self._say(f"{self.name}: {w.name} exited with code {rc}; stopping")
                        return 1
                    delay = w.policy.crashed(now)
                    self._say(restart_line(self.name, w.name, rc, delay, w.policy.restarts))
                    w.due = now + delay
                elif now >= w.due and not self._stop:
                    if self._held(w.name):
                        continue  # kept down on purpose: try again once the file is gone
                    try:
                        w.start()
                    except (InfraError, OSError) as exc:
                        delay = w.policy.crashed(time.monotonic())
                        self._say(f"{self.name}: {w.name}: {exc}")
                        self._say(restart_line(self.name, w.name, None, delay,
                                               w.policy.restarts))
                        w.due = time.monotonic() + delay
                        continue
                    w.policy.started(time.monotonic())
                    w.due = None
                    self._record_children()
            time.sleep(0.2)
        return 0

    @staticmethod
    def _say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def _announce(self, nats: NatsServer, redis: RedisServer, state: StateDir) -> None:
        names = ", ".join(c.name for c in self.children)
        print(f"  nats {nats.url}  redis {redis.url}", flush=True)
        print(f"  their users of this run: {nats.workdir / CREDENTIALS_FILE}", flush=True)
        print(f"  keys and admin settings: {state.keys_file} (parley logpurge finds them)",
              flush=True)
        if self.metrics_key:
            made = "made for this run" if self._made_metrics_key else f"from {state.keys_file}"
            print(f"  metrics API key ({made}): {self.metrics_key}", flush=True)
        if self._relay_ports and any(_is_relay(c.name) for c in self.children):
            where = self.relay_public_host or "the address each browser used"
            print(f"  relay (TURN) on {self.relay_host or self.host}: "
                  f"{'; '.join(self._relay_ports)}; handed out at {where}", flush=True)
        if self.external_turn:
            print("  relay (TURN): the external server given with --external-turn "
                  "(built-in relay not started)", flush=True)
        urls = self.public_urls()
        for extra in urls[1:]:
            print(f"  from other machines: {extra}", flush=True)
        print(f"Parley is running at {urls[0]}  ({names}; Ctrl-C stops)", flush=True)

    def _held(self, name: str) -> bool:
        """Whether `run/<pid>/hold/<name>` asks to keep this child down."""
        return self._run_dir is not None and (self._run_dir / HOLD_DIR / name).exists()

    def _record_children(self) -> None:
        """Write `run/<pid>/children.json`: every child's pid by name (and relay ports)."""
        if self._run_dir is None:
            return
        doc: dict[str, dict[str, object]] = {}
        for name, server in self._servers.items():
            if server.proc is not None:
                doc[name] = {"pid": server.proc.pid}
        for c in self.children:
            if c.proc is not None:
                doc[c.name] = {"pid": c.proc.pid, **c.info}
        tmp = self._run_dir / f".{CHILDREN_FILE}.tmp"
        try:
            tmp.write_text(json.dumps({"stack_pid": os.getpid(), "children": doc}, indent=1))
            os.replace(tmp, self._run_dir / CHILDREN_FILE)
        except OSError as exc:
            self._say(f"{self.name}: cannot write {CHILDREN_FILE}: {exc.strerror}")

    def _port_free(self) -> bool:
        import socket

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family) as s:
            # as the gateway binds: a restart must not wait for TIME_WAIT to pass
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


def _is_relay(name: str) -> bool:
    return name == "relay" or name.startswith("relay-")


def running_children(data_dir: Path | None = None) -> dict[str, dict[str, object]]:
    """The running stack's children by name (`{"relay-1": {"pid": 123, "turn_port": 3478}}`,
    NATS and Redis included), from its state dir; {} when no stack runs from it.

    For fault injection (`make chaos`, the e2e tests): kill one by pid; touch
    `hold_file(data_dir, name)` first to keep it down until the file is removed.
    """
    state = StateDir(data_dir)
    pid = state.read(state.run_file).get("PARLEY_STACK_PID", "")
    if not pid.isdigit() or not _pid_alive(int(pid)):
        return {}
    try:
        doc = json.loads((state.path / RUNS_DIR / pid / CHILDREN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    children: dict[str, dict[str, object]] = doc.get("children", {})
    return children


def hold_file(data_dir: Path | None, name: str) -> Path:
    """The file that keeps child `name` of the running stack down while it exists."""
    state = StateDir(data_dir)
    pid = state.read(state.run_file).get("PARLEY_STACK_PID", "")
    if not pid.isdigit():
        raise DevStackError(f"no running Parley stack found in {state.path}")
    return state.path / RUNS_DIR / pid / HOLD_DIR / name


def _fresh_run_dir(runs: Path) -> Path:
    """`runs/<this pid>`, new and owner-only, after removing the folders of stacks that no
    longer run (killed before they could clean up; a folder named for this pid is one too)."""
    runs.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in runs.iterdir():
        if old.name.isdigit() and (int(old.name) == os.getpid() or not _pid_alive(int(old.name))):
            shutil.rmtree(old, ignore_errors=True)
    mine = runs / str(os.getpid())
    mine.mkdir(mode=0o700)
    return mine


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _ready(url: str) -> bool:
    """`http://…/readyz` answers 200, or `tcp://host:port` accepts a connection."""
    import socket

    if url.startswith("tcp://"):
        host, _, port = url[len("tcp://"):].rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1):
                return True
        except OSError:
            return False
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except Exception:
        return False


def _outward_addresses() -> list[str]:
    """This machine's address towards the rest of the network (no packet is sent)."""
    import socket

    found: list[str] = []
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            addr = str(s.getsockname()[0])
            if addr not in ("0.0.0.0", "::"):
                found.append(addr)
    return found
