"""The five faults of issue 10, each run against a call in progress and timed.

`run_fault` injects one fault into a running dev stack while a `Call` of two pages is in
progress, then polls (about once a second) until remote video advances on both pages and
a chat line round-trips both ways, and stays so for `settle` seconds after the fault's own
server-side condition holds. The time reported is from the injection to the start of that
working streak. Each fault also runs its own checks:

- 3 NATS: beacons posted meanwhile are either refused or stored (never acked and lost);
  every successful join's diagnostic record reaches the stream.
- 4 Redis: the room is locked first; a stranger tries to join it without the password and
  to unlock it with a made-up owner key on every poll (never let in); a friend with the
  password gets in afterwards; a new room opens.
- 5 rooms: a new join works once it is back.

`make chaos` (`python -m bench.chaos`) runs them all in both modes; tests/e2e/test_chaos.py
runs faults 3-5 in one mode with a short bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.chaos import processes
from bench.chaos.call import Call
from bench.chaos.table import Outcome
from tests.stack import Stack

NATS_STOP_SECONDS: Final[float] = 5.0
PASSWORD: Final[str] = "chaos-password"
PROBE_EVERY: Final[float] = 0.7
VERBOSE: bool = bool(os.environ.get("PARLEY_CHAOS_VERBOSE"))


@dataclass(frozen=True)
class Fault:
    key: str
    title: str


FAULTS: Final[tuple[Fault, ...]] = (
    Fault("relay", "1. a relay dies (SIGKILL)"),
    Fault("signaling", "2. a signalling replica dies (SIGKILL)"),
    Fault("nats", f"3. NATS stops for {NATS_STOP_SECONDS:.0f} s, then restarts"),
    Fault("redis", "4. Redis restarts and loses its data"),
    Fault("rooms", "5. the rooms service restarts (SIGKILL)"),
)
BY_KEY: Final[dict[str, Fault]] = {f.key: f for f in FAULTS}


# --- HTTP and NATS, from outside the stack ----------------------------------------------------

def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Status and JSON body (None when there is none); 0 when the request fails."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            raw, status = r.read(), int(r.status)
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), int(exc.code)
    except Exception:
        return 0, None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def _in_thread(coro: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine on its own loop in another thread (playwright's sync API owns this
    thread's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro())).result(timeout=120)


def admin_nats_url(stack: Stack) -> str:
    """The dev stack's `admin` NATS user (from the credentials file it announces)."""
    line = next(ln for ln in stack.lines if "their users of this run:" in ln)
    path = Path(line.split(": ", 1)[1].strip())
    return str(json.loads(path.read_text())["nats"]["admin"])


def stream_ids(stack: Stack, stream: str) -> tuple[int, set[str]]:
    """A stream's message count and the `Nats-Msg-Id`s it holds."""
    import nats

    async def read() -> tuple[int, set[str]]:
        nc = await nats.connect(admin_nats_url(stack), connect_timeout=5)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            ids: set[str] = set()
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(stream, seq)
                except Exception:
                    continue
                if msg.headers and "Nats-Msg-Id" in msg.headers:
                    ids.add(msg.headers["Nats-Msg-Id"])
            return int(info.state.messages), ids
        finally:
            await nc.close()

    result: tuple[int, set[str]] = _in_thread(read)
    return result


def beacon_body() -> dict[str, Any]:
    return {"v": 1, "nonce": secrets.token_urlsafe(16), "event": "session-end",
            "local_candidate": "host", "remote_candidate": "host", "protocol": "udp",
            "duration": "1-5m", "peers": "2"}


def room_relay_port(stack: Stack, room: str) -> int | None:
    """The TURN port rooms hands out for `room` (a join that leaves at once)."""
    status, info = http("POST", f"{stack.url}/api/rooms/{room}/join", {})
    if status != 200:
        return None
    http("POST", f"{stack.url}/api/rooms/{room}/leave", {"token": info["token"]})
    for server in info["ice_servers"]:
        urls = server["urls"] if isinstance(server["urls"], list) else [server["urls"]]
        for url in urls:
            if str(url).startswith("turn:"):
                return int(str(url).split("?")[0].rsplit(":", 1)[1])
    return None


def busiest_replica(stack: Stack) -> str:
    """The signalling replica with the most open sockets (the one holding the call)."""
    counts: dict[str, float] = {}
    for name, url in stack.run_env().items():
        if name.startswith("PARLEY_SIGNALING_") and name.endswith("_INTERNAL_URL"):
            replica = name.removeprefix("PARLEY_").removesuffix("_INTERNAL_URL")
            replica = replica.lower().replace("_", "-")
            try:
                with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except Exception:
                continue
            counts[replica] = next((float(ln.split()[-1]) for ln in text.splitlines()
                                    if ln.startswith("parley_signaling_connections ")), 0.0)
    if not counts:
        raise RuntimeError("no signalling replica answers /metrics")
    return max(sorted(counts), key=lambda r: counts[r])


def stack_ready(stack: Stack) -> bool:
    """Every service's /readyz and the gateway's answer 200."""
    urls = [v for k, v in stack.run_env().items() if k.endswith("_INTERNAL_URL")]
    return all(http("GET", f"{u}/readyz")[0] == 200 for u in [*urls, stack.url])


def wait_until(check: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


# --- one fault ---------------------------------------------------------------------------------

@dataclass
class _Run:
    """What one fault's probes found."""

    stack: Stack
    call: Call
    saw: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    joins_ok: int = 0
    acked: set[str] = field(default_factory=set)
    refused_beacons: int = 0
    stranger: dict[int, int] = field(default_factory=dict)
    diag_before: int = 0

    def see(self, what: str) -> None:
        if what not in self.saw:
            self.saw.append(what)

    def fail(self, what: str) -> None:
        if what not in self.failed:
            self.failed.append(what)

    def new_join(self) -> bool:
        status, _ = http("POST", f"{self.stack.url}/api/rooms/chaos-{secrets.token_hex(4)}/join",
                         {})
        self.joins_ok += status == 200
        return status == 200

    def post_beacon(self) -> None:
        body = beacon_body()
        status, _ = http("POST", f"{self.stack.url}/beacon", body)
        if status == 204:
            self.acked.add(str(body["nonce"]))
        else:
            self.refused_beacons += 1

    def attack(self) -> bool:
        """A stranger tries the locked room; True once refused as locked (403)."""
        url = f"{self.stack.url}/api/rooms/{self.call.room}"
        status, info = http("POST", f"{url}/join", {})
        self.stranger[status] = self.stranger.get(status, 0) + 1
        if status == 200:
            self.fail("a stranger joined the locked room")
            if info and info.get("owner_key"):
                self.fail("a stranger became its owner")
        u_status, _ = http("POST", f"{url}/unlock", {"owner_key": secrets.token_urlsafe(18)})
        if 200 <= u_status < 300:
            self.fail(f"a stranger's unlock got {u_status}")
        return status == 403


def run_fault(fault: Fault, stack: Stack, new_page: Any, *, bound: float = 60.0,
              settle: float = 6.0) -> Outcome:
    """Inject `fault` into a fresh call of two pages on `stack` and time the healing."""
    call = Call(new_page, stack.url)
    run = _Run(stack, call)
    try:
        return _measure(fault, run, bound=bound, settle=settle)
    finally:
        call.close()


def _inject(fault: Fault, run: _Run) -> Callable[[], bool]:
    """Do the fault; return the server-side condition the fault waits for (healed)."""
    stack = run.stack
    if fault.key == "relay":
        port = room_relay_port(stack, run.call.room)
        if port is None:
            raise RuntimeError("rooms hands out no relay")
        old = processes.kill(stack, f"relay:{port}")
        return lambda: stack_ready(stack) and old not in processes.children(stack)
    if fault.key == "signaling":
        replica = busiest_replica(stack)
        old = processes.kill(stack, replica)
        return lambda: processes.back(stack, replica, old)
    if fault.key == "nats":
        run.diag_before, _ = stream_ids(stack, "PARLEY_DIAG")
        old = processes.freeze_then_kill(stack, "nats", NATS_STOP_SECONDS)
        return lambda: processes.back(stack, "nats", old) and stack_ready(stack)
    if fault.key == "redis":
        run.call.lock(PASSWORD)
        old = processes.kill(stack, "redis")
        # healed once the room is put back: the stranger is refused as "locked", not 503
        return lambda: processes.back(stack, "redis", old) and run.stranger.get(403, 0) > 0
    if fault.key == "rooms":
        old = processes.kill(stack, "rooms")
        return lambda: processes.back(stack, "rooms", old) and run.new_join()
    raise ValueError(fault.key)


def _measure(fault: Fault, run: _Run, *, bound: float, settle: float) -> Outcome:
    t0 = time.monotonic()
    healed = _inject(fault, run)
    stop = threading.Event()
    prober = threading.Thread(target=_probe_server, args=(fault, run, stop), daemon=True)
    prober.start()
    try:
        since = _poll_call(run, t0, healed, bound=bound, settle=settle)
    finally:
        stop.set()
        prober.join(timeout=30)
    _after(fault, run, bound)
    return Outcome(since, bound, run.saw + run.notes, run.failed)


def _probe_server(fault: Fault, run: _Run, stop: threading.Event) -> None:
    """At its own pace (a request may wait seconds on a frozen NATS): beacons and new joins
    during fault 3, the stranger's attempts during fault 4."""
    while not stop.wait(PROBE_EVERY):
        if fault.key == "nats":
            run.post_beacon()
            run.new_join()
        if fault.key == "redis":
            run.attack()


def _poll_call(run: _Run, t0: float, healed: Callable[[], bool], *, bound: float,
               settle: float) -> float | None:
    """Seconds from t0 to the start of the working streak that lasted until `settle` after
    the server healed; None if there was none within `bound`."""
    healed_at: float | None = None
    since: float | None = None
    while True:
        now = time.monotonic() - t0
        for what in run.call.seen():
            run.see(what)
        media = run.call.media_flows()
        chat = run.call.chat_round_trips()
        if not media:
            run.see("video froze")
        if not chat:
            run.see("chat not delivered")
        if healed_at is None and healed():
            healed_at = time.monotonic() - t0
        if VERBOSE:
            print(f"  t={now:5.1f}s media={media} chat={chat} healed={healed_at} "
                  f"saw={run.call.seen()}", flush=True)
        since = (now if since is None else since) if media and chat else None
        end = time.monotonic() - t0
        if since is not None and healed_at is not None and end - max(since, healed_at) >= settle:
            return since
        if end > bound:
            return None


def _after(fault: Fault, run: _Run, bound: float) -> None:
    """The fault's own checks once the call works again."""
    stack = run.stack
    if fault.key == "nats":
        def stored() -> bool:
            count, _ = stream_ids(stack, "PARLEY_DIAG")
            return count >= run.diag_before + run.joins_ok

        if not wait_until(stored, 30):
            run.fail("a diagnostic record was lost")
        _, ids = stream_ids(stack, "PARLEY_BEACONS")
        if run.acked - ids:
            run.fail(f"{len(run.acked - ids)} acknowledged beacons lost")
        else:
            run.notes.append(f"beacons: {len(run.acked)} acked and stored, "
                             f"{run.refused_beacons} refused while NATS was away")
    if fault.key == "redis":
        url = f"{stack.url}/api/rooms/{run.call.room}/join"
        if http("POST", url, {"password": PASSWORD})[0] != 200:
            run.fail("a friend with the password could not join")
        if not wait_until(run.new_join, bound):
            run.fail("new rooms did not open again")
        refused = ", ".join(f"{n}×{s}" for s, n in sorted(run.stranger.items()))
        run.notes.append(f"a stranger was refused ({refused})")
    if fault.key in ("rooms", "signaling", "relay") and not wait_until(run.new_join, bound):
        run.fail("new joins did not work again")
    if not wait_until(lambda: stack_ready(stack), bound):
        run.fail("the stack did not become ready again")
