"""The one Kubernetes client of the operator: every API call it makes goes through `Kube`.

A thin layer over lightkube's `AsyncClient` that speaks plain dicts (the manifests that
`manifests.py` builds), uses JSON merge patches only, and maps API errors to
`errors.NotFound` / `errors.Conflict` / `errors.KubeError`. It works the same against a
real cluster (in-cluster service account or `KUBECONFIG`) and against an in-memory fake API
(`Kube.from_url`). kopf's own calls (watching RelayPools and SfuPools, its progress annotations) are
kopf's business; this module carries out everything the handlers decide.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Event, Pod, Secret, Service
from lightkube.types import PatchType

from parley_operator.errors import Conflict, KubeError, NotFound

__all__ = ["GROUP", "KINDS", "PLURAL", "SFU_PLURAL", "VERSION", "Kind", "Kube", "RelayPool",
           "SfuPool"]

GROUP: Final[str] = "parley.dev"
VERSION: Final[str] = "v1alpha1"
PLURAL: Final[str] = "relaypools"
SFU_PLURAL: Final[str] = "sfupools"
FIELD_MANAGER: Final[str] = "parley-operator"

RelayPool = create_namespaced_resource(GROUP, VERSION, "RelayPool", PLURAL)
SfuPool = create_namespaced_resource(GROUP, VERSION, "SfuPool", SFU_PLURAL)

Kind = Literal["Pod", "Service", "Secret", "RelayPool", "SfuPool"]
KINDS: Final[dict[str, Any]] = {
    "Pod": Pod, "Service": Service, "Secret": Secret, "RelayPool": RelayPool,
    "SfuPool": SfuPool, "Event": Event,
}


def _to_dict(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict())


def _from_dict(kind: str, manifest: dict[str, Any]) -> Any:
    res = KINDS[kind]
    return res(manifest) if kind in ("RelayPool", "SfuPool") else res.from_dict(manifest)


_ERRORS: Final = (ApiError, httpx2.HTTPStatusError)


def _mapped(exc: Exception, what: str) -> KubeError:
    # lightkube raises ApiError for a Status body sent as exactly `application/json`, and
    # leaves httpx's HTTPStatusError for any other content type (`...; charset=utf-8`).
    if isinstance(exc, httpx2.HTTPStatusError):
        code = exc.response.status_code
        try:
            detail = str(exc.response.json().get("message") or exc.response.reason_phrase)
        except ValueError:
            detail = exc.response.reason_phrase
    else:
        status = getattr(exc, "status", None)
        code = int(getattr(status, "code", 0) or 0)
        detail = str(getattr(status, "message", None) or exc)
    message = f"{what}: {detail}"
    if code == 404:
        return NotFound(message, status=code)
    if code == 409:
        return Conflict(message, status=code)
    return KubeError(message, status=code)


def _labels_match(obj: dict[str, Any], labels: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


class Kube:
    """Get, list, create, patch and delete the objects the operator owns; emit events."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> Kube:
        """A client for an API server at `url` without credentials (a local fake or proxy)."""
        config = KubeConfig.from_dict({
            "clusters": [{"name": "api", "cluster": {"server": url}}],
            "users": [{"name": "anonymous", "user": {}}],
            "contexts": [{"name": "api", "context": {"cluster": "api", "user": "anonymous"}}],
            "current-context": "api",
        })
        return cls(AsyncClient(config, field_manager=FIELD_MANAGER))

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str]) -> Kube:
        """A client for the current context of the kubeconfig at `path`."""
        return cls(AsyncClient(KubeConfig.from_file(path), field_manager=FIELD_MANAGER))

    @classmethod
    def from_environment(cls) -> Kube:
        """A client configured like kubectl: in-cluster service account, else `KUBECONFIG`."""
        return cls(AsyncClient(KubeConfig.from_env(), field_manager=FIELD_MANAGER))

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.client.close()

    async def get(self, kind: Kind, name: str, *, namespace: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return _to_dict(await self.client.get(KINDS[kind], name, namespace=namespace))
        except _ERRORS as exc:
            err = _mapped(exc, f"get {kind} {namespace}/{name}")
            if isinstance(err, NotFound):
                return None
            raise err from exc

    async def list(
        self, kind: Kind, *, namespace: str, labels: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """Objects of `kind` in `namespace` carrying all of `labels`.

        The selector is sent to the server and applied again here, so a server that ignores
        label selectors (a minimal fake) gives the same answer as a real one.
        """
        try:
            found = [
                _to_dict(obj)
                async for obj in self.client.list(
                    KINDS[kind], namespace=namespace, labels=dict(labels))
            ]
        except _ERRORS as exc:
            raise _mapped(exc, f"list {kind} in {namespace}") from exc
        return [obj for obj in found if _labels_match(obj, labels)]

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the object `manifest` describes (its own namespace); Conflict if it exists."""
        kind, meta = manifest["kind"], manifest["metadata"]
        try:
            created = await self.client.create(_from_dict(kind, manifest))
        except _ERRORS as exc:
            raise _mapped(exc, f"create {kind} {meta.get('namespace')}/{meta['name']}") from exc
        return _to_dict(created)

    async def patch(
        self, kind: Kind, name: str, patch: dict[str, Any], *, namespace: str,
        status: bool = False,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386) to the object, or to its status subresource."""
        res = KINDS[kind].Status if status else KINDS[kind]
        try:
            patched = await self.client.patch(
                res, name, patch, namespace=namespace, patch_type=PatchType.MERGE
            )
        except _ERRORS as exc:
            what = f"patch {kind}{'/status' if status else ''} {namespace}/{name}"
            raise _mapped(exc, what) from exc
        return _to_dict(patched)

    async def delete(self, kind: Kind, name: str, *, namespace: str) -> bool:
        """Delete the object; False when it was already gone."""
        try:
            await self.client.delete(KINDS[kind], name, namespace=namespace)
        except _ERRORS as exc:
            err = _mapped(exc, f"delete {kind} {namespace}/{name}")
            if isinstance(err, NotFound):
                return False
            raise err from exc
        return True

    async def event(
        self, about: dict[str, Any], *, reason: str, message: str, warning: bool = False
    ) -> None:
        """Record a core/v1 Event about `about` (best effort: a failure is not an error)."""
        meta = about.get("metadata") or {}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name', 'relaypool')}.{secrets.token_hex(8)}",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": about.get("apiVersion"), "kind": about.get("kind"),
                "name": meta.get("name"), "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason, "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": FIELD_MANAGER},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            await self.client.create(_from_dict("Event", event))
        except (*_ERRORS, httpx2.HTTPError):
            return
