"""Services that someone else runs, given by address (`--editor-address`, `--scorer-address`).

The orchestrator only talks to them: it cannot restart a dead editor (that editor's samples go to
the others) and it stops nothing — "editors to zero" is up to whoever runs them, so on a shared GPU
the judge must fit next to the editors.
"""

from __future__ import annotations

from editfleet_common.channels import health_status, make_channel, wait_serving

from .base import Endpoint, Fleet, FleetError


class StaticFleet(Fleet):
    stops_services = False

    def __init__(self, editor_addresses: list[str], scorer_address: str | None, *, wait_timeout: float = 120.0,
                 editor_tls=None, scorer_tls=None):
        self.editor_addresses = list(editor_addresses)
        self.scorer_address = scorer_address
        self.wait_timeout = wait_timeout
        self.editor_tls, self.scorer_tls = editor_tls, scorer_tls  # ClientTls or None (plaintext)

    def _wait(self, what: str, address: str, tls) -> None:
        channel = make_channel(address, tls=tls)
        try:
            wait_serving(channel, self.wait_timeout)
        except TimeoutError as exc:
            raise FleetError(f"{what} at {address}: {exc}") from None
        finally:
            channel.close()

    def start_editors(self, count: int) -> list[Endpoint]:
        if not self.editor_addresses:
            raise FleetError("the static fleet has no editor addresses (--editor-address HOST:PORT)")
        endpoints = [Endpoint(f"editor-{i}", a) for i, a in enumerate(self.editor_addresses[:count])]
        for endpoint in endpoints:
            self._wait(f"editor {endpoint.name}", endpoint.address, self.editor_tls)
        return endpoints

    def editor_alive(self, endpoint: Endpoint) -> bool:
        channel = make_channel(endpoint.address, tls=self.editor_tls)
        try:
            return health_status(channel, timeout=2.0) in ("SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
        finally:
            channel.close()

    def stop_editors(self) -> None:
        """Nothing to stop: these editors belong to whoever started them."""

    def start_scorer(self) -> Endpoint:
        if not self.scorer_address:
            raise FleetError("the static fleet has no scorer address (--scorer-address HOST:PORT)")
        self._wait("scorer", self.scorer_address, self.scorer_tls)
        return Endpoint("scorer", self.scorer_address)

    def running_scorer(self) -> Endpoint | None:
        return Endpoint("scorer", self.scorer_address) if self.scorer_address else None

    def restart_scorer(self, endpoint: Endpoint) -> Endpoint | None:
        return None  # not ours to restart: the same address is tried again

    def stop_scorer(self) -> None:
        """Nothing to stop (see the module note)."""

    def describe(self) -> dict:
        return {"kind": "static", "editors": self.editor_addresses, "scorer": self.scorer_address,
                "tls": {"editors": self.editor_tls is not None, "scorer": self.scorer_tls is not None}}
