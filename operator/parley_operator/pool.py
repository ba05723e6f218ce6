"""A RelayPool as the operator sees it: its identity (`PoolRef`) and its validated spec.

`parse_pool_spec` validates `.spec` with `PoolSpec` (the planner's model) and reads the
fields the CRD allows that `PoolSpec` does not carry (yet) into `PoolExtras`, so a spec the
CRD accepts is never rejected for a field the planner has no use for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley_operator.errors import SpecError
from parley_operator.spec import PoolSpec

__all__ = ["PoolExtras", "PoolRef", "parse_pool_spec"]

API_VERSION: Final[str] = "parley.dev/v1alpha1"
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
class PoolRef:
    """Which RelayPool: enough to name its objects and to own them."""

    name: str
    namespace: str
    uid: str | None = None
    api_version: str = API_VERSION

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> PoolRef:
        meta = body.get("metadata") or {}
        return cls(
            name=str(meta["name"]), namespace=str(meta.get("namespace") or "default"),
            uid=meta.get("uid"), api_version=str(body.get("apiVersion") or API_VERSION),
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
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"spec.{where}: {first['msg']}"


def parse_pool_spec(raw: dict[str, Any] | None) -> tuple[PoolSpec, PoolExtras]:
    """Validate a RelayPool `.spec`.

    Args:
        raw: the `.spec` mapping as stored in the cluster (camelCase keys).

    Returns:
        The planner's `PoolSpec` and the remaining CRD fields as `PoolExtras`.

    Raises:
        SpecError: the spec does not validate; the message names the first bad field.
    """
    rest = copy.deepcopy(dict(raw or {}))
    extras: dict[str, Any] = {}
    for parents, key in _EXTRA_FIELDS:
        holder: Any = rest
        for p in parents:
            holder = holder.get(p) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and key in holder and not _modelled(parents, key):
            extras[key] = holder.pop(key)
    try:
        return PoolSpec.model_validate(rest), PoolExtras.model_validate(extras)
    except ValidationError as exc:
        raise SpecError(_where(exc)) from exc


def _modelled(parents: tuple[str, ...], key: str) -> bool:
    """Whether PoolSpec already has this field (then it is left to PoolSpec)."""
    model: Any = PoolSpec
    for p in parents:
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == p), None)
        if field is None or not isinstance(field.annotation, type):
            return False
        model = field.annotation
    return any((f.alias or n) == key for n, f in model.model_fields.items())
