"""Optional differential-privacy noise on report counts, drawn by OpenDP (never hand-rolled).

With `PARLEY_METRICS_EPSILON` set, every count of a released row gets discrete Laplace
noise of scale `sensitivity / epsilon` from `opendp`'s vetted sampler, before the k
threshold is applied. Each session counts in one row per report, contributing at most 1 to
each of a row's `measures` counts, so a row's L1 sensitivity is the number of measures.
A release is frozen per period (`AggregateStore.frozen_release`) so that asking again does
not draw fresh noise that could be averaged away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class NoiseUnavailable(RuntimeError):
    """`opendp` is not installed but an epsilon was configured."""


class CountNoise:
    """Adds discrete Laplace noise to non-negative integer counts."""

    def __init__(self, epsilon: float, *, sensitivity: int) -> None:
        try:
            import opendp.prelude as dp
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise NoiseUnavailable("PARLEY_METRICS_EPSILON needs `pip install opendp`") from exc
        dp.enable_features("contrib")
        self.scale = sensitivity / epsilon
        self._measure: Callable[[int], Any] = dp.m.make_laplace(
            dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=self.scale
        )

    def __call__(self, count: int) -> int:
        """`count` plus noise, clamped at 0."""
        return max(0, int(self._measure(int(count))))
