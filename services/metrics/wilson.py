"""Wilson score intervals for a binomial proportion (the failure rate of a browser version).

Wilson, E. B. (1927), "Probable inference, the law of succession, and statistical
inference", JASA 22(158): the interval stays inside [0, 1] and behaves for small counts and
rates near 0, where the normal approximation does not.
"""

from __future__ import annotations

import math
from typing import Final

Z95: Final[float] = 1.959963984540054


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of `successes` out of `n` at `z` standard deviations.

    Args:
        successes: events counted (0 ≤ successes ≤ n).
        n: trials.
        z: the normal quantile (1.96 for a two-sided 95 % interval).

    Returns:
        (low, high), both in [0, 1]; (0.0, 1.0) when `n` is 0.

    Raises:
        ValueError: counts out of range.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
