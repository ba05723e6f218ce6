"""`parley operator`: run the operator, or ask `plan` what it would do (`plan` subcommand)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

app = typer.Typer(help="The RelayPool and SfuPool operator.", no_args_is_help=True,
                  add_completion=False)


def _load(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=what) from None
    try:
        return yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not valid: {exc}", param_hint=what) from None


def _pydantic_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


@app.command("plan")
def plan_command(
    pool: Annotated[Path, typer.Option(
        help="RelayPool or SfuPool YAML (the whole object, or a RelayPool's spec).")],
    observed: Annotated[Path, typer.Option(help="Observed state as JSON.")],
    now: Annotated[str | None, typer.Option(help="ISO 8601 time to plan at (default: now).")]
    = None,
) -> None:
    """Print, as JSON, the actions the operator would take for this pool and observed state."""
    from parley_operator.errors import SpecError
    from parley_operator.plan import Observed, plan
    from parley_operator.pool import SFU, kind_of, parse_pool_spec, parse_sfu_pool_spec

    doc = _load(pool, "--pool")
    spec_doc = doc.get("spec", doc) if isinstance(doc, dict) else doc
    if not isinstance(spec_doc, dict | None):
        raise typer.BadParameter("expected a RelayPool, an SfuPool or a spec",
                                 param_hint="--pool")
    kind = kind_of(str(doc.get("kind") or "")) if isinstance(doc, dict) else kind_of("")
    try:  # the CRD's fields the planner does not need are accepted too
        spec = (parse_sfu_pool_spec(spec_doc)[0].plan_spec() if kind == SFU
                else parse_pool_spec(spec_doc)[0])
    except SpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--pool") from None
    try:
        obs = Observed.model_validate(_load(observed, "--observed"))
    except ValidationError as exc:
        raise typer.BadParameter(_pydantic_error(exc), param_hint="--observed") from None
    if now is None:
        at = datetime.now(UTC)
    else:
        try:
            at = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            raise typer.BadParameter(f"not ISO 8601: {now!r}", param_hint="--now") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    typer.echo(plan(spec, obs, at, kind=kind).model_dump_json(indent=2))


@app.command()
def run(
    namespace: Annotated[list[str] | None, typer.Option(
        help="Namespace to watch, repeatable (default: every namespace).")] = None,
    nats_url: Annotated[str, typer.Option(
        envvar="PARLEY_NATS_URL", help="NATS the operator reads heartbeats from.")]
    = "nats://127.0.0.1:4222",
    relay_nats_url: Annotated[str | None, typer.Option(
        envvar="PARLEY_OPERATOR_RELAY_NATS_URL",
        help="NATS URL given to relay pods (default: --nats-url), or secret:<name>/<key> "
             "for a Secret holding it.")] = None,
    sfu_nats_url: Annotated[str | None, typer.Option(
        envvar="PARLEY_OPERATOR_SFU_NATS_URL",
        help="NATS URL given to SFU pods (the sfu user; default: --relay-nats-url), or "
             "secret:<name>/<key>.")] = None,
    sfu_pools: Annotated[bool, typer.Option(
        envvar="PARLEY_OPERATOR_SFU_POOLS",
        help="Also run SfuPools (needs RBAC on sfupools).")] = False,
    otel_exporter: Annotated[str, typer.Option(
        envvar="PARLEY_OTEL_EXPORTER",
        help="Trace exporter given to relay pods (none, console, otlp); with "
             "OTEL_EXPORTER_OTLP_ENDPOINT, that endpoint goes to relay and SFU pods too.")]
    = "none",
    standalone: Annotated[bool, typer.Option(
        help="Run without kopf peering (one operator replica).")] = True,
    peering: Annotated[str | None, typer.Option(
        help="kopf peering object name (needs kopf's peering CRD); implies --no-standalone.")]
    = None,
    liveness: Annotated[str | None, typer.Option(
        help="Liveness endpoint, e.g. http://0.0.0.0:8080/healthz.")] = None,
    server: Annotated[str | None, typer.Option(
        help="API server URL without credentials (kubectl proxy); default in-cluster/KUBECONFIG.")]
    = None,
    interval: Annotated[float, typer.Option(min=1, help="Seconds between rounds per pool.")]
    = 10.0,
) -> None:
    """Run the RelayPool and SfuPool operator (kopf) until SIGTERM."""
    import asyncio
    import os

    from parley_operator.handlers import Options, run_operator
    from parley_operator.manifests import Tracing

    tracing = Tracing(exporter=otel_exporter,
                      otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None)
    opts = Options(nats_url=nats_url, relay_nats_url=relay_nats_url, server=server,
                   sfu_nats_url=sfu_nats_url, tracing=tracing, sfu_pools=sfu_pools,
                   reconcile_seconds=interval)
    asyncio.run(run_operator(opts, namespaces=list(namespace or []), standalone=standalone,
                             peering=peering, liveness=liveness))
