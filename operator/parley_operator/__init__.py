"""The Parley operator: runs the TURN relay fleet described by `RelayPool` resources, and
the SFU fleet described by `SfuPool` resources (with `--sfu-pools`).

The folder is `operator/`, the package `parley_operator` (a package named `operator` would
shadow the standard library's).
"""

from parley_operator.plan import Action, Observed, ObservedRelay, Plan, PoolSpec, plan

__all__ = ["Action", "Observed", "ObservedRelay", "Plan", "PoolSpec", "plan"]
