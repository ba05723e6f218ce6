"""A bad setting of any service is one line on stderr naming the variable, never a traceback:
each list setting (and a few others) through the real `parley <service>` command
(issue 15, item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import start_service

PARLEY = str(Path(sys.executable).parent / "parley")
KEYS = {"PARLEY_TOKEN_KEY": "t" * 32, "PARLEY_HASH_KEY": "h" * 32}

# (command, variable, bad value, the one line expected on stderr)
CASES = [
    (["rooms"], "PARLEY_TRUSTED_PROXIES", "127.0.0.0/8,nope",
     "parley: PARLEY_TRUSTED_PROXIES: not a CIDR: 'nope'"),
    (["rooms"], "PARLEY_TRUSTED_PROXIES", '["10.0.0.0/8"',
     "parley: PARLEY_TRUSTED_PROXIES: not a JSON list (Expecting ',' delimiter at character 13)"),
    (["rooms"], "PARLEY_STUN_URLS", "stun:a.example,http://b.example",
     "parley: PARLEY_STUN_URLS: not a stun: URL: 'http://b.example'"),
    (["rooms"], "PARLEY_ALLOWED_ORIGINS", '["https://a.example"',
     "parley: PARLEY_ALLOWED_ORIGINS: not a JSON list (Expecting ',' delimiter at character 20)"),
    (["rooms"], "PARLEY_SECURITY_CONTACT", "call me",
     "parley: PARLEY_SECURITY_CONTACT: expected a mailto:, https:// or tel: URI, or an e-mail "
     "address"),
    (["signaling"], "PARLEY_ALLOWED_ORIGINS", "[1]",
     "parley: PARLEY_ALLOWED_ORIGINS: Input should be a valid string"),
    (["signaling"], "PARLEY_ALLOWED_ORIGINS", '[1',
     "parley: PARLEY_ALLOWED_ORIGINS: not a JSON list (Expecting ',' delimiter at character 2)"),
    (["signaling"], "PARLEY_TRUSTED_PROXIES", "10.0.0.0/33",
     "parley: PARLEY_TRUSTED_PROXIES: not a CIDR: '10.0.0.0/33'"),
    (["metrics"], "PARLEY_METRICS_API_KEYS", '["k1", ',
     "parley: PARLEY_METRICS_API_KEYS: not a JSON list (Expecting value at character 6)"),
    (["metrics"], "PARLEY_METRICS_ALLOWED_ORIGINS", "[https://a.example]",
     "parley: PARLEY_METRICS_ALLOWED_ORIGINS: not a JSON list (Expecting value at character 1)"),
    (["metrics"], "PARLEY_TRUSTED_PROXIES", "127.0.0.1/32,::1/200",
     "parley: PARLEY_TRUSTED_PROXIES: not a CIDR: '::1/200'"),
    (["metrics", "aggregate"], "PARLEY_TRUSTED_PROXIES", "x",
     "parley: PARLEY_TRUSTED_PROXIES: not a CIDR: 'x'"),
    (["logpurge"], "PARLEY_RETENTION_DAYS", "forever",
     "parley: PARLEY_RETENTION_DAYS: Input should be a valid integer, unable to parse string as "
     "an integer"),
    (["logpurge", "status"], "PARLEY_LOG_LEVEL", "loud",
     "parley: PARLEY_LOG_LEVEL: Input should be 'debug', 'info', 'warning' or 'error'"),
    (["relay", "--secret", "s", "--relay-ip", "127.0.0.1"], "PARLEY_RELAY_ALLOW_PEER",
     '["127.0.0.1/32"',
     "error: --allow-peer (PARLEY_RELAY_ALLOW_PEER): not a JSON list (Expecting ',' delimiter "
     "at character 15)"),
    (["relay", "--secret", "s", "--relay-ip", "127.0.0.1"], "PARLEY_RELAY_ALLOW_PEER",
     "127.0.0.1/32,nope", "error: --allow-peer (PARLEY_RELAY_ALLOW_PEER): not a CIDR: 'nope'"),
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    return {**env, **KEYS, **extra}


@pytest.mark.parametrize(("command", "var", "value", "line"), CASES,
                         ids=[f"{c[0]}-{v}-{i}" for i, (c, v, _, _) in enumerate(CASES)])
def test_cli_bad_setting_one_line(command: list[str], var: str, value: str, line: str) -> None:
    result = subprocess.run([PARLEY, *command], env=_env(**{var: value}), capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [line]
    assert "Traceback" not in result.stdout


def test_cli_missing_token_key_signaling_one_line() -> None:
    env = _env()
    del env["PARLEY_TOKEN_KEY"]
    result = subprocess.run([PARLEY, "signaling"], env=env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["parley: PARLEY_TOKEN_KEY is not set"]


def test_rooms_starts_with_bare_cidr_trusted_proxies(parley_env: dict[str, str]) -> None:
    # the crash of the issue: a JSONDecodeError traceback at start
    sp = start_service("rooms", [], {**parley_env, "PARLEY_TRUSTED_PROXIES": "127.0.0.0/8",
                                     "PARLEY_STUN_URLS": "stun:a.example,stun:b.example"})
    try:
        assert "Traceback" not in sp.output()
    finally:
        sp.stop()
