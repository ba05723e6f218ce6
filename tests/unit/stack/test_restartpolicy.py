"""The restart backoff of `parley dev`'s supervision loop."""

from __future__ import annotations

from services.restartpolicy import RestartPolicy, restart_line


def test_restart_policy_doubles_up_to_the_ceiling() -> None:
    policy = RestartPolicy(first=0.5, ceiling=30.0, stable_after=60.0)
    delays = []
    now = 0.0
    for _ in range(9):
        policy.started(now)
        now += 1.0  # dies a second after each start
        delays.append(policy.crashed(now))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert policy.restarts == 9


def test_restart_policy_resets_after_the_child_stayed_up() -> None:
    policy = RestartPolicy(first=0.5, ceiling=30.0, stable_after=60.0)
    policy.started(0.0)
    assert policy.crashed(1.0) == 0.5
    policy.started(1.5)
    assert policy.crashed(2.0) == 1.0
    policy.started(3.0)
    assert policy.crashed(63.0) == 0.5  # up for 60 s: a fresh start
    assert policy.restarts == 3


def test_restart_policy_just_short_of_stable_keeps_doubling() -> None:
    policy = RestartPolicy(first=0.5, ceiling=30.0, stable_after=60.0)
    policy.started(0.0)
    assert policy.crashed(59.9) == 0.5
    policy.started(60.0)
    assert policy.crashed(119.9) == 1.0


def test_restart_line_names_the_child_code_delay_and_count() -> None:
    assert restart_line("parley dev", "signaling-1", -9, 1.0, 2) == (
        "parley dev: signaling-1 exited with code -9; restarting in 1.0 s (restart 2)")
    assert restart_line("parley serve", "nats", None, 30.0, 7) == (
        "parley serve: nats did not start; restarting in 30.0 s (restart 7)")
