"""Parley on one server, reached from another host (issue 16).

A network namespace on a veth pair stands in for a second machine (`tests/e2e/netns.py`).
Chromium runs inside it and opens the stack by this machine's veth address, over HTTPS with
a test certificate that browser trusts (its key's SPKI hash). Three stacks, one each per
module: Parley holding the public port and TLS itself; one that refuses the page's Origin;
one on loopback behind Debian's nginx and Caddy with the shipped configs.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from services.common.infra import free_port
from services.signaling.node import ORIGIN_REFUSED_REASON
from tests.certs import CertFiles, make_certificate
from tests.conftest import CHROMIUM_ARGS
from tests.e2e import pages as ui
from tests.e2e.conftest import Stack, start_stack
from tests.e2e.netns import Netns, NetnsUnavailable, network_namespace

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
NewPage = Callable[[], Page]


# --- the second host, certificates, browsers ------------------------------------------------

@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    try:
        with network_namespace() as ns:
            yield ns
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="parley-one-server-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def cert(workdir: Path, netns: Netns) -> CertFiles:
    return make_certificate(workdir / "tls", names=["localhost"],
                            ips=[netns.host_ip, "127.0.0.1"])


def _launch(pw: Any, executable: str, cert: CertFiles) -> Any:
    return pw.chromium.launch(
        executable_path=executable, headless=True,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={cert.spki_sha256}"])


@pytest.fixture(scope="module")
def browsers(chromium_path: str, netns: Netns, cert: CertFiles,
             workdir: Path) -> Iterator[tuple[Any, Any]]:
    """(a Chromium inside the namespace, a Chromium on this machine), both trusting `cert`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        remote = _launch(pw, str(netns.wrapper(workdir, chromium_path)), cert)
        local = _launch(pw, chromium_path, cert)
        yield remote, local
        remote.close()
        local.close()


def _page_maker(browser: Any) -> Iterator[NewPage]:
    contexts: list[Any] = []

    def make() -> Page:
        ctx = browser.new_context(permissions=["camera", "microphone"])
        contexts.append(ctx)
        return ctx.new_page()  # type: ignore[no-any-return]

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def remote_page(browsers: tuple[Any, Any]) -> Iterator[NewPage]:
    """Pages of the browser on the other host."""
    yield from _page_maker(browsers[0])


@pytest.fixture
def local_page(browsers: tuple[Any, Any]) -> Iterator[NewPage]:
    """Pages of the browser on this machine."""
    yield from _page_maker(browsers[1])


# --- the stacks ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_stack(netns: Netns, cert: CertFiles) -> Iterator[Stack]:
    """`parley dev --host 0.0.0.0` with TLS on the public port and TURN over TLS."""
    s = start_stack(extra=["--host", "0.0.0.0", "--tls-cert", str(cert.cert),
                           "--tls-key", str(cert.key)])
    s.url = f"https://{netns.host_ip}:{s.port}"
    yield s
    s.stop()


@pytest.fixture(scope="module")
def proxied_stack(netns: Netns) -> Iterator[Stack]:
    """`parley dev` on loopback (plain HTTP), its relay on the veth address: what nginx and
    Caddy front."""
    s = start_stack(extra=["--host", "127.0.0.1", "--relay-host", netns.host_ip])
    yield s
    s.stop()


# --- what a call needs --------------------------------------------------------------------

def _turn_hosts(answer: dict[str, Any]) -> set[str]:
    hosts = set()
    for server in answer["ice_servers"]:
        urls = [server["urls"]] if isinstance(server["urls"], str) else server["urls"]
        for url in urls:
            if url.startswith(("turn:", "turns:")):
                hosts.add(re.sub(r"^turns?:(.*):\d+\?.*$", r"\1", url))
    return hosts


def _call(a: Page, b: Page, base_url: str, *, relay: bool = False,
          b_url: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A starts a call at `base_url`, B joins (at `b_url`'s origin if given); both see each
    other. Returns both join answers."""
    room_url = ui.start_call(a, base_url)
    if b_url is not None:
        room_url = b_url + "/" + room_url.rsplit("/", 1)[1]
    ui.open_room(b, room_url)
    answers = []
    ids = []
    for page in (a, b):
        if relay:
            page.get_by_label("Always relay (hides my IP address from others)").check()
        with page.expect_response(lambda r: r.url.endswith("/join")) as answer:
            ids.append(ui.join(page))
        answers.append(answer.value.json())
    for page, other in ((a, ids[1]), (b, ids[0])):
        ui.wait_for_video_from(page, other)
        assert ui.connection_states(page) == {other: "connected"}
        if relay:
            pair = ui.selected_pair(page, other)
            assert pair is not None and pair.local_type == "relay", pair
    return answers[0], answers[1]


def test_one_server_two_hosts_call_over_https(tls_stack: Stack, netns: Netns,
                                              remote_page: NewPage) -> None:
    a, b = remote_page(), remote_page()
    first, second = _call(a, b, tls_stack.url)
    assert a.url.startswith(f"https://{netns.host_ip}:{tls_stack.port}/")
    assert first["signaling_url"] == second["signaling_url"] == "/ws"
    assert _turn_hosts(first) == _turn_hosts(second) == {netns.host_ip}


def test_one_server_two_hosts_call_relay_forced(tls_stack: Stack, netns: Netns,
                                                remote_page: NewPage) -> None:
    a, b = remote_page(), remote_page()
    first, _ = _call(a, b, tls_stack.url, relay=True)
    assert _turn_hosts(first) == {netns.host_ip}
    turns = [u for s in first["ice_servers"] for u in s["urls"] if u.startswith("turns:")]
    assert len(turns) == 1  # TURN over TLS, with the same certificate


def test_one_server_opened_by_loopback_and_by_localhost(tls_stack: Stack,
                                                        local_page: NewPage) -> None:
    a, b = local_page(), local_page()
    first, second = _call(a, b, f"https://127.0.0.1:{tls_stack.port}",
                          b_url=f"https://localhost:{tls_stack.port}")
    assert b.url.startswith(f"https://localhost:{tls_stack.port}/")
    assert _turn_hosts(first) == _turn_hosts(second) == {"127.0.0.1"}


def test_one_server_refused_socket_says_why(local_page: NewPage) -> None:
    stack = start_stack(relay=False, env={"PARLEY_ALLOWED_ORIGINS": "https://chat.example.org"})
    try:
        page = local_page()
        ui.open_room(page, f"{stack.url}/refused-room")
        ui.click_join(page)
        expect(page.locator("#prejoin-error")).to_have_text(
            f"Could not join: {ORIGIN_REFUSED_REASON}", timeout=ui.JOIN_TIMEOUT_MS)
    finally:
        stack.stop()
    refused = [line for line in stack.lines if "socket refused" in line]
    assert len(refused) == 1, refused
    assert refused[0].rstrip().endswith(
        "socket refused: its Origin is not this site's "
        "(PARLEY_PUBLIC_URL / PARLEY_ALLOWED_ORIGINS)")


# --- behind nginx and Caddy, with the shipped configs ---------------------------------------

def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"not listening on {host}:{port}:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def nginx_site(shipped: str, *, listen: str, cert: CertFiles, upstream_port: int) -> str:
    """deploy/nginx.conf for this test: its address, certificate and upstream port."""
    site = re.sub(r"server \{\s*listen 80;.*?\n\}\n", "", shipped, count=1, flags=re.S)
    site = site.replace("listen 443 ssl http2;", f"listen {listen} ssl http2;")
    site = site.replace("    listen [::]:443 ssl http2;\n", "")
    site = site.replace("/etc/letsencrypt/live/chat.example.org/fullchain.pem", str(cert.cert))
    site = site.replace("/etc/letsencrypt/live/chat.example.org/privkey.pem", str(cert.key))
    return site.replace("127.0.0.1:8080", f"127.0.0.1:{upstream_port}")


def test_one_server_behind_nginx(proxied_stack: Stack, netns: Netns, cert: CertFiles,
                                 workdir: Path, remote_page: NewPage) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (apt-get install nginx)")
    port = free_port(netns.host_ip)
    folder = workdir / "nginx"
    folder.mkdir()
    (folder / "site.conf").write_text(nginx_site(
        (REPO / "deploy" / "nginx.conf").read_text(), listen=f"{netns.host_ip}:{port}",
        cert=cert, upstream_port=proxied_stack.port))
    (folder / "nginx.conf").write_text(
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{}}\n"
        f"http {{\n client_body_temp_path {folder}/body;\n proxy_temp_path {folder}/proxy;\n"
        f" include {folder}/site.conf;\n}}\n")
    log = folder / "stdout.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([nginx, "-c", str(folder / "nginx.conf"), "-p", str(folder),
                                 "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(netns.host_ip, port, proc, log)
        first, second = _call(remote_page(), remote_page(), f"https://{netns.host_ip}:{port}")
    finally:
        _stop(proc)
    assert _turn_hosts(first) == _turn_hosts(second) == {netns.host_ip}


def caddyfile(shipped: str, *, site: str, cert: CertFiles, upstream_port: int,
              storage: Path) -> str:
    """deploy/Caddyfile for this test: its address, certificate and upstream port."""
    text = shipped.replace("chat.example.org {", f"{site} {{")
    text = text.replace("# tls /etc/parley/tls/fullchain.pem /etc/parley/tls/privkey.pem",
                        f"tls {cert.cert} {cert.key}")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{upstream_port}")
    return (f"{{\n\tadmin off\n\tauto_https disable_redirects\n"
            f"\tstorage file_system {{\n\t\troot {storage}\n\t}}\n}}\n\n{text}")


def test_one_server_behind_caddy(netns: Netns, cert: CertFiles,
                                 workdir: Path, remote_page: NewPage) -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed (apt-get install caddy: Debian 12 has 2.6)")
    port = free_port(netns.host_ip)
    # as deploy/Caddyfile says: behind Caddy, public_url names the site (Caddy 2.6 cannot
    # pass the local address, and the relay host is never taken from the request's Host)
    proxied_stack = start_stack(extra=["--host", "127.0.0.1", "--relay-host", netns.host_ip,
                                       "--public-url", f"https://{netns.host_ip}:{port}"])
    try:
        first, second = _caddy_call(caddy, port, proxied_stack, netns, cert, workdir,
                                    remote_page)
    finally:
        proxied_stack.stop()
    # Caddy 2.6 does not pass the local address: the relay is the public URL's host
    assert _turn_hosts(first) == _turn_hosts(second) == {netns.host_ip}


def _caddy_call(caddy: str, port: int, proxied_stack: Stack, netns: Netns, cert: CertFiles,
                workdir: Path, remote_page: NewPage) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = workdir / "caddy"
    folder.mkdir()
    (folder / "Caddyfile").write_text(caddyfile(
        (REPO / "deploy" / "Caddyfile").read_text(), site=f"https://{netns.host_ip}:{port}",
        cert=cert, upstream_port=proxied_stack.port, storage=folder / "data"))
    log = folder / "caddy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [caddy, "run", "--adapter", "caddyfile", "--config", str(folder / "Caddyfile")],
            stdout=out, stderr=subprocess.STDOUT,
            env={"HOME": str(folder), "XDG_DATA_HOME": str(folder / "data"),
                 "XDG_CONFIG_HOME": str(folder / "config"), "PATH": "/usr/bin:/bin"})
    try:
        _wait_port(netns.host_ip, port, proc, log)
        first, second = _call(remote_page(), remote_page(), f"https://{netns.host_ip}:{port}")
    finally:
        _stop(proc)
    return first, second
