"""Fleets: who starts the services. `make_fleet` picks one by name (config `fleet.kind`).

A new kind is one module with a factory `(config: RunConfig, logs_dir: Path) -> Fleet` and one
entry in FLEETS. The kubernetes entry imports `orchestrator.fleet.kubernetes` lazily and calls its
`create_fleet(config, logs_dir)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .base import Endpoint, Fleet, FleetError


def _local(config, logs_dir: Path) -> Fleet:
    from .local import LocalFleet

    options = config.fleet.options
    unknown = set(options) - {"start_timeout_s", "stop_grace_s"}
    if unknown:
        raise FleetError(f"fleet.options for the local fleet: unknown {', '.join(sorted(unknown))} "
                         "(known: start_timeout_s, stop_grace_s)")
    return LocalFleet(config, logs_dir, start_timeout=float(options.get("start_timeout_s", 900)),
                      stop_grace=float(options.get("stop_grace_s", 60)))


def _static(config, logs_dir: Path) -> Fleet:
    from ..config import client_tls
    from .static import StaticFleet

    return StaticFleet(config.fleet.editor_addresses, config.fleet.scorer_address,
                       editor_tls=client_tls(config.editor.tls), scorer_tls=client_tls(config.judge.tls))


def _kubernetes(config, logs_dir: Path) -> Fleet:
    try:
        from .kubernetes import create_fleet
    except ImportError as exc:
        raise FleetError(f"the kubernetes fleet is not available in this checkout ({exc})") from None
    return create_fleet(config, logs_dir)


FLEETS: dict[str, Callable[..., Fleet]] = {"local": _local, "static": _static, "kubernetes": _kubernetes}


def make_fleet(config, logs_dir: Path) -> Fleet:
    kind = config.fleet.kind
    if kind not in FLEETS:
        raise FleetError(f"unknown fleet {kind!r}; known: {', '.join(FLEETS)}")
    return FLEETS[kind](config, logs_dir)


__all__ = ["Endpoint", "FLEETS", "Fleet", "FleetError", "make_fleet"]
