"""A pool as the operator sees it: its kind (`PoolKind`: RelayPool or SfuPool), its identity
(`PoolRef`) and its validated spec.

`parse_pool_spec` validates `.spec` with `PoolSpec` (the planner's model) and reads the
fields the CRD allows that `PoolSpec` does not carry (yet) into `PoolExtras`, so a spec the
CRD accepts is never rejected for a field the planner has no use for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley_operator.errors import SpecError
from parley_operator.spec import PoolSpec, SfuPoolSpec

__all__ = [
    "RELAY", "SFU", "PoolExtras", "PoolKind", "PoolRef", "kind_of", "parse_pool_spec",
    "parse_sfu_pool_spec",
]

API_VERSION: Final[str] = "parley.dev/v1alpha1"
_S = TypeVar("_S", bound=BaseModel)
# CRD fields outside PoolSpec: (path of the parent object in .spec, key).
_EXTRA_FIELDS: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    ((), "imagePullPolicy"),
    ((), "secretName"),
    ((), "nodeSelector"),
    ((), "tolerations"),
    (("exposure",), "serviceAnnotations"),
    (("ports",), "tlsSecretName"),
)


@dataclass(frozen=True, slots=True)
class PoolKind:
    """What differs between the pools the operator runs: names, labels, words, features.

    Both kinds share the observe → plan → act → status round; a member (a relay, an SFU) is
    one Pod and, unless on the host network, one Service of its own.
    """

    kind: Literal["RelayPool", "SfuPool"]  # the custom resource's kind
    plural: str  # its plural (API path)
    component: str  # app.kubernetes.io/component of its Pods and Services
    member_label: str  # label carrying the member's id
    noun: str  # "relay" in messages
    stem: str  # "Relay" in condition reasons and event reasons
    load: str  # what the heartbeat's load counts (status key, messages)
    members_key: str  # status key of the per-member list
    probed: bool  # WebRTC probes and the ProbeHealthy condition
    has_secret: bool  # a TURN Secret to keep and rotate


RELAY: Final[PoolKind] = PoolKind(
    kind="RelayPool", plural="relaypools", component="relay", member_label="parley.dev/relay",
    noun="relay", stem="Relay", load="allocations", members_key="relays", probed=True,
    has_secret=True)
SFU: Final[PoolKind] = PoolKind(
    kind="SfuPool", plural="sfupools", component="sfu", member_label="parley.dev/sfu",
    noun="SFU", stem="Sfu", load="peers", members_key="sfus", probed=False, has_secret=False)
_KINDS: Final[dict[str, PoolKind]] = {k.kind: k for k in (RELAY, SFU)}


def kind_of(name: str) -> PoolKind:
    """The `PoolKind` of a custom resource kind (RelayPool when unknown or missing)."""
    return _KINDS.get(name, RELAY)


@dataclass(frozen=True, slots=True)
class PoolRef:
    """Which pool: enough to name its objects and to own them."""

    name: str
    namespace: str
    uid: str | None = None
    api_version: str = API_VERSION
    kind: PoolKind = RELAY

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> PoolRef:
        meta = body.get("metadata") or {}
        return cls(
            name=str(meta["name"]), namespace=str(meta.get("namespace") or "default"),
            uid=meta.get("uid"), api_version=str(body.get("apiVersion") or API_VERSION),
            kind=kind_of(str(body.get("kind") or RELAY.kind)),
        )


class PoolExtras(BaseModel):
    """The CRD's spec fields that `PoolSpec` does not model."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", alias="imagePullPolicy")
    secret_name: str | None = Field(
        default=None, alias="secretName", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253)
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    service_annotations: dict[str, str] = Field(
        default_factory=dict, alias="serviceAnnotations")
    tls_secret_name: str | None = Field(default=None, alias="tlsSecretName")


def _where(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = "".join(f".{p}" for p in first["loc"])  # a rule across fields: spec itself
    return f"spec{where}: {first['msg']}"


def parse_pool_spec(raw: dict[str, Any] | None) -> tuple[PoolSpec, PoolExtras]:
    """Validate a RelayPool `.spec`.

    Args:
        raw: the `.spec` mapping as stored in the cluster (camelCase keys).

    Returns:
        The planner's `PoolSpec` and the remaining CRD fields as `PoolExtras`.

    Raises:
        SpecError: the spec does not validate; the message names the first bad field.
    """
    return _parse(PoolSpec, raw)


def parse_sfu_pool_spec(raw: dict[str, Any] | None) -> tuple[SfuPoolSpec, PoolExtras]:
    """Validate an SfuPool `.spec` (as `parse_pool_spec`; the CRD has no secret or TLS
    fields for it, so those extras stay unset)."""
    return _parse(SfuPoolSpec, raw)


def _parse(model: type[_S], raw: dict[str, Any] | None) -> tuple[_S, PoolExtras]:
    rest = copy.deepcopy(dict(raw or {}))
    extras: dict[str, Any] = {}
    for parents, key in _EXTRA_FIELDS:
        holder: Any = rest
        for p in parents:
            holder = holder.get(p) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and key in holder and not _modelled(model, parents, key):
            extras[key] = holder.pop(key)
    try:
        return model.model_validate(rest), PoolExtras.model_validate(extras)
    except ValidationError as exc:
        raise SpecError(_where(exc)) from exc


def _modelled(model: Any, parents: tuple[str, ...], key: str) -> bool:
    """Whether the spec model already has this field (then it is left to the model)."""
    for p in parents:
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == p), None)
        if field is None or not isinstance(field.annotation, type):
            return False
        model = field.annotation
    return any((f.alias or n) == key for n, f in model.model_fields.items())
